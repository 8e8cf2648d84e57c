import { z } from 'zod';
import { RESPONSE_TO_MAX } from '../message.js';
import { IsoTime, MessageId, MessageType, PrincipalId, Tags, UtcTime } from './common.js';

/**
 * The message envelope as documented (docs/api.md, "The message envelope"). Ingestion does not
 * parse with this schema: `parseEnvelope` (core/message.ts) is hand-written because it runs for
 * every message on the hot path, where it builds the normalized message in the same pass and
 * costs a fraction of a generic validator. This schema is what the OpenAPI document shows, and
 * test/envelope-schema.fuzz.test.ts holds the two to the same answers.
 */

const RESPONSE_TO_RULE = `must be an array of at most ${RESPONSE_TO_MAX} non-empty strings of at most 128 characters, without commas`;
const ResponseTo = z
  .array(
    z
      .string({ error: RESPONSE_TO_RULE })
      .min(1, { error: RESPONSE_TO_RULE })
      .max(128, { error: RESPONSE_TO_RULE })
      .regex(/^[^,]*$/, { error: RESPONSE_TO_RULE }),
    { error: RESPONSE_TO_RULE },
  )
  .max(RESPONSE_TO_MAX, { error: RESPONSE_TO_RULE });

export const Envelope = z
  .strictObject(
    {
      id: MessageId.optional(),
      type: MessageType,
      from: PrincipalId.optional().meta({ description: 'The authenticated sender; any other value is refused with 403 NITROGEN_ERR_SENDER_MISMATCH.' }),
      to: PrincipalId.optional().meta({ description: 'The principal a command or reply is addressed to.' }),
      ts: IsoTime.optional(),
      body: z.unknown().optional().meta({ description: 'Any JSON value; null when absent.' }),
      tags: Tags.optional(),
      responseTo: ResponseTo.optional().meta({ description: 'Ids of the messages this answers.' }),
      expires: IsoTime.optional().meta({ description: 'The store may drop the message after this time.' }),
    },
    { error: (issue) => (issue.code === 'unrecognized_keys' ? 'is not an envelope field' : 'must be a JSON object') },
  )
  .meta({ id: 'Envelope', description: 'A message as a client sends it.' });

/** A message as the server stores, returns, streams and forwards it: normalized. */
export const Message = z
  .strictObject({
    id: MessageId,
    type: MessageType,
    from: PrincipalId,
    to: PrincipalId.optional(),
    ts: UtcTime,
    body: z.unknown(),
    tags: Tags.optional(),
    responseTo: ResponseTo.optional(),
    expires: UtcTime.optional(),
  })
  .meta({ id: 'Message', description: 'A normalized message envelope.' });
