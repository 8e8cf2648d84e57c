import { NitrogenError } from '../../core/errors.js';
import { PRINCIPAL_ID_PATTERN, TYPE_PATTERN } from '../../core/message.js';
import type { MessageQuery } from '../../core/ports/store.js';
import { parseIsoTime } from '../../core/time.js';

type Query = Record<string, string | string[] | undefined>;

function invalid(name: string, message: string): NitrogenError {
  return new NitrogenError('NITROGEN_ERR_VALIDATION', `${name}: ${message}`, { details: { field: name } });
}

/** Refuses query parameters a route does not know, so a typo is not silently ignored. */
export function checkParams(query: Query, known: readonly string[]): void {
  for (const name of Object.keys(query)) if (!known.includes(name)) throw invalid(name, `is not a parameter here (known: ${known.join(', ')})`);
}

/** A repeated or comma-separated parameter as a list of values each matching `pattern`. */
export function listParam(query: Query, name: string, pattern: RegExp): string[] | undefined {
  const raw = query[name];
  if (raw === undefined) return undefined;
  const values = (Array.isArray(raw) ? raw : [raw]).flatMap((v) => v.split(','));
  for (const value of values) if (!pattern.test(value)) throw invalid(name, `'${value}' is not valid`);
  return values;
}

export function singleParam(query: Query, name: string): string | undefined {
  const raw = query[name];
  if (Array.isArray(raw)) throw invalid(name, 'may be given once');
  return raw;
}

function timeParam(query: Query, name: string): string | undefined {
  const raw = singleParam(query, name);
  if (raw === undefined) return undefined;
  const ms = parseIsoTime(raw);
  if (Number.isNaN(ms)) throw invalid(name, 'must be an ISO-8601 time with Z or an offset');
  return new Date(ms).toISOString();
}

/** `limit`: defaults to `fallback`; larger values than `max` are capped, not refused (docs/api.md). */
export function limitParam(query: Query, fallback: number, max: number): number {
  const raw = singleParam(query, 'limit');
  if (raw === undefined) return fallback;
  const limit = Number(raw);
  if (!Number.isInteger(limit) || limit < 1) throw invalid('limit', 'must be a positive integer');
  return Math.min(limit, max);
}

export const FILTER_PARAMS = ['from', 'to', 'type', 'tag', 'since', 'until'] as const;
const TAG_PATTERN = /^[^,]{1,64}$/;

export type MessageFilter = Omit<MessageQuery, 'order' | 'limit' | 'cursor' | 'scope'>;

/** The message filters of `GET /messages` and `GET /messages/stream`. */
export function messageFilter(query: Query): MessageFilter {
  const filter: MessageFilter = {};
  const from = listParam(query, 'from', PRINCIPAL_ID_PATTERN);
  const to = listParam(query, 'to', PRINCIPAL_ID_PATTERN);
  const type = listParam(query, 'type', TYPE_PATTERN);
  const tags = listParam(query, 'tag', TAG_PATTERN);
  const since = timeParam(query, 'since');
  const until = timeParam(query, 'until');
  if (from) filter.from = from;
  if (to) filter.to = to;
  if (type) filter.type = type;
  if (tags) filter.tags = tags;
  if (since) filter.since = since;
  if (until) filter.until = until;
  return filter;
}

export function orderParam(query: Query): 'asc' | 'desc' {
  const order = singleParam(query, 'order') ?? 'asc';
  if (order !== 'asc' && order !== 'desc') throw invalid('order', "must be 'asc' or 'desc'");
  return order;
}
