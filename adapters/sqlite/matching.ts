import { decodeCursor } from '../../core/cursor.js';
import { NitrogenError } from '../../core/errors.js';
import type { MessageQuery } from '../../core/ports/store.js';
import type { MessageRecord } from './record.js';

/** A query's bounds on `ts` in milliseconds, with its cursor decoded. */
export interface Bounds {
  desc: boolean;
  /** Inclusive bounds from `since` and the cursor. */
  lo: number;
  hi: number;
  /** Exclusive bound from `until`. */
  until: number;
  cursor?: { ts: number; id: string; from: string };
}

const MAX_TIME = 8.64e15;

export function queryBounds(query: MessageQuery): Bounds {
  const desc = query.order === 'desc';
  const bounds: Bounds = { desc, lo: -Infinity, hi: Infinity, until: Infinity };
  if (query.since) bounds.lo = Date.parse(query.since);
  if (query.until) bounds.until = Date.parse(query.until);
  if (query.cursor) {
    const [ts, id, from] = decodeCursor(query.cursor, ['string', 'string', 'string']) as [string, string, string];
    const ms = Date.parse(ts);
    if (!(Math.abs(ms) <= MAX_TIME)) throw new NitrogenError('NITROGEN_ERR_VALIDATION', 'cursor: is not a cursor this server issued', { details: { field: 'cursor' } });
    bounds.cursor = { ts: ms, id, from };
    if (desc) bounds.hi = ms;
    else bounds.lo = Math.max(bounds.lo, ms);
  }
  return bounds;
}

/** (ts, id, from) order, the total order of queries; ids and senders compare as strings, as core/query.ts does. */
function compareRecords(a: MessageRecord, b: MessageRecord): number {
  if (a.ts !== b.ts) return a.ts - b.ts;
  if (a.id !== b.id) return a.id < b.id ? -1 : 1;
  return a.from < b.from ? -1 : a.from > b.from ? 1 : 0;
}

/** How (ts, id, from) compares with a cursor's. */
function compareToCursor(r: MessageRecord, c: { ts: number; id: string; from: string }): number {
  if (r.ts !== c.ts) return r.ts - c.ts;
  if (r.id !== c.id) return r.id < c.id ? -1 : 1;
  return r.from < c.from ? -1 : r.from > c.from ? 1 : 0;
}

export function hitOrder(desc: boolean): (a: MessageRecord, b: MessageRecord) => number {
  return desc ? (a, b) => compareRecords(b, a) : compareRecords;
}

/** Whether a record satisfies the query's filters, time bounds and cursor (what core/query.ts's matchesQuery says, on a record). */
export function recordMatches(r: MessageRecord, query: MessageQuery, bounds: Bounds): boolean {
  if (r.ts < bounds.lo || r.ts > bounds.hi || r.ts >= bounds.until) return false;
  const c = bounds.cursor;
  if (c && r.ts === c.ts && (bounds.desc ? compareToCursor(r, c) >= 0 : compareToCursor(r, c) <= 0)) return false;
  if (query.from && !query.from.includes(r.from)) return false;
  if (query.to && (r.to === null || !query.to.includes(r.to))) return false;
  if (query.type && !query.type.includes(r.type)) return false;
  if (query.tags && !query.tags.every((tag) => r.tags?.includes(tag))) return false;
  if (query.scope && !query.scope.from.includes(r.from) && (r.to === null || !query.scope.to.includes(r.to))) return false;
  return true;
}
