import type { Message } from './message.js';
import type { MessageQuery } from './ports/store.js';

/** Whether a message satisfies a query's filters (not its paging). For in-memory stores and checks. */
export function matchesQuery(message: Message, query: Omit<MessageQuery, 'order' | 'limit' | 'cursor'>): boolean {
  if (query.from && !query.from.includes(message.from)) return false;
  if (query.to && (message.to === undefined || !query.to.includes(message.to))) return false;
  if (query.type && !query.type.includes(message.type)) return false;
  if (query.since && message.ts < query.since) return false;
  if (query.until && message.ts >= query.until) return false;
  if (query.tags && !query.tags.every((tag) => message.tags?.includes(tag))) return false;
  if (query.scope && !query.scope.from.includes(message.from) && (message.to === undefined || !query.scope.to.includes(message.to))) return false;
  return true;
}

/** Orders messages by (ts, id, from), as every store's query does: (from, id) is the key, so the order is total. */
export function compareMessages(a: Message, b: Message): number {
  if (a.ts !== b.ts) return a.ts < b.ts ? -1 : 1;
  if (a.id !== b.id) return a.id < b.id ? -1 : 1;
  return a.from < b.from ? -1 : a.from > b.from ? 1 : 0;
}
