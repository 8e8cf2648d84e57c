import { z } from 'zod';
import type { NitrogenConfig } from '../../../core/config.js';
import type { MessageQuery } from '../../../core/ports/store.js';
import { Cursor, IsoTime, MessageType, PrincipalId, Tag, pageLimit } from '../../../core/schemas/common.js';
import { PrincipalType } from '../../../core/schemas/principals.js';

/** The query string schemas of the REST routes (plugins/rest/params.ts reads them). */

/** A route that takes no parameter refuses any. */
export const NoQuery = z.strictObject({});

const list = <T extends z.ZodType>(item: T, description: string) =>
  z
    .array(item)
    .optional()
    .meta({ description: `${description}; repeated or comma-separated.` });

/** The filters of `GET /messages` and `GET /messages/stream`. */
export const MessageFilters = z.strictObject({
  from: list(PrincipalId, 'Senders: any of them'),
  to: list(PrincipalId, 'Recipients: any of them'),
  type: list(MessageType, 'Types: any of them'),
  tag: list(Tag, 'Tags: the message holds every one'),
  since: IsoTime.optional().meta({ description: '`ts` at or after this time.' }),
  until: IsoTime.optional().meta({ description: '`ts` before this time.' }),
});

export type MessageFilter = Omit<MessageQuery, 'order' | 'limit' | 'cursor' | 'scope'>;

/** The store's filter for parsed filter parameters (`tag` is the store's `tags`). */
export function messageFilter(query: z.output<typeof MessageFilters>): MessageFilter {
  const { tag, ...rest } = query;
  return tag === undefined ? rest : { ...rest, tags: tag };
}

type Limits = Pick<NitrogenConfig['limits'], 'defaultQueryLimit' | 'maxQueryLimit'>;

export function messageQuery(limits: Limits) {
  return MessageFilters.extend({
    order: z.enum(['asc', 'desc'], { error: "must be 'asc' or 'desc'" }).default('asc').meta({ description: 'By `ts`, then `id`.' }),
    limit: pageLimit(limits.defaultQueryLimit, limits.maxQueryLimit),
    cursor: Cursor.optional(),
  });
}

export function principalQuery(limits: Limits) {
  return z.strictObject({
    type: PrincipalType.optional(),
    tag: z.string().optional().meta({ description: 'Principals holding this tag.' }),
    with: z.literal('presence').optional().meta({ description: '`presence`: each principal with its presence (connected, since…), null when it never connected.' }),
    limit: pageLimit(limits.defaultQueryLimit, limits.maxQueryLimit),
    cursor: Cursor.optional(),
  });
}
