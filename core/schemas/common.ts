import { z } from 'zod';
import { MESSAGE_ID_PATTERN, PRINCIPAL_ID_PATTERN, TAG_MAX_LENGTH, TAGS_MAX, TYPE_PATTERN } from '../message.js';
import { ISO_8601, parseIsoTime } from '../time.js';

/**
 * The pieces every request and response schema is made of: ids, types, tags, times, paging.
 * One definition of each, shared by the REST routes, the OpenAPI document built from them, and
 * any other transport or tool that takes the same inputs. Each check carries the message a
 * client reads after the field's name (`tags: must be …`), so a schema is also the error text.
 */

const PRINCIPAL_ID_RULE = 'must match [A-Za-z0-9._-]{1,128}';
export const PrincipalId = z.string({ error: PRINCIPAL_ID_RULE }).regex(PRINCIPAL_ID_PATTERN, { error: PRINCIPAL_ID_RULE }).meta({
  description: 'A principal id. Ids are MQTT topic levels too, so `/`, `+`, `#` and `$` are excluded.',
});

const TYPE_RULE = 'must match [A-Za-z0-9._-]{1,64}';
export const MessageType = z.string({ error: TYPE_RULE }).regex(TYPE_PATTERN, { error: TYPE_RULE }).meta({ description: 'A message type.' });

const MESSAGE_ID_RULE = 'must match [A-Za-z0-9._:~-]{1,128}';
export const MessageId = z.string({ error: MESSAGE_ID_RULE }).regex(MESSAGE_ID_PATTERN, { error: MESSAGE_ID_RULE }).meta({
  description: 'A message id: server-assigned and time-ordered, or chosen by the sender as an idempotency key.',
});

// No commas: queries take lists of tags and ids as comma-separated values.
const TAGS_RULE = `must be an array of at most ${TAGS_MAX} strings of 1-${TAG_MAX_LENGTH} characters without commas`;
export const Tag = z
  .string({ error: TAGS_RULE })
  .min(1, { error: TAGS_RULE })
  .max(TAG_MAX_LENGTH, { error: TAGS_RULE })
  .regex(/^[^,]*$/, { error: TAGS_RULE });
export const Tags = z.array(Tag, { error: TAGS_RULE }).max(TAGS_MAX, { error: TAGS_RULE });

/**
 * A time as Nitrogen reads it (core/time.ts): ISO-8601 with `Z` or an offset, a real day, in
 * years 1970-9999. Parsed to the UTC form with milliseconds it is stored and returned as.
 */
const TIME_RULE = 'must be an ISO-8601 time with Z or an offset';
export const IsoTime = z
  .string({ error: TIME_RULE })
  .max(40, { error: TIME_RULE })
  .regex(ISO_8601, { error: TIME_RULE })
  .refine((value) => !Number.isNaN(parseIsoTime(value)), { error: TIME_RULE })
  .transform((value) => new Date(parseIsoTime(value)).toISOString())
  .meta({ description: 'An ISO-8601 time with `Z` or an offset (or a date: midnight UTC), in years 1970-9999.' });

/** A time as the server writes it: UTC with milliseconds. */
export const UtcTime = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/)
  .meta({ description: 'A time in UTC with milliseconds.' });

const LIMIT_RULE = 'must be a positive integer';
/**
 * A page size from a query string: a positive integer, `fallback` when absent, and capped at
 * `max` rather than refused. `Number()` reads it, as it always did (`limit=1e3` is 1,000).
 */
export function pageLimit(fallback: number, max: number) {
  return z.coerce
    .number({ error: LIMIT_RULE })
    .min(1, { error: LIMIT_RULE })
    .refine(Number.isInteger, { error: LIMIT_RULE })
    .transform((limit) => Math.min(limit, max))
    .default(fallback)
    .meta({ description: `Page size, ${fallback} when absent; larger values than ${max} are capped at ${max}, not refused.`, type: 'integer', minimum: 1, default: fallback });
}

export const Cursor = z.string().meta({ description: 'The `next` of the previous page.' });
/** What a listing answers for its next page: a cursor, or null at the end. */
export const NextCursor = z.string().nullable().meta({ description: 'The cursor of the next page, or null after the last one.' });
