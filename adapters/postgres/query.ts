import { decodeCursor } from '../../core/cursor.js';
import { NitrogenError } from '../../core/errors.js';
import type { MessageQuery } from '../../core/ports/store.js';

/**
 * A value as the `tags` column holds it: the content of its JSON string. PostgreSQL text
 * cannot hold U+0000 (a tag may), and JSON's escaping is one-to-one, so equal tags stay equal;
 * the envelope keeps the tag as it was. Almost every tag has nothing to escape.
 */
export function columnTag(tag: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are what this escapes
  return /["\\\u0000-\u001f\ud800-\udfff]/.test(tag) ? JSON.stringify(tag).slice(1, -1) : tag;
}

/** Separates the tags of one message in the parameter `append` sends; escaped tags never hold it. */
export const TAG_SEPARATOR = '\u0001';

/** Beyond this many senders or recipients, one scan with the lists as filters replaces a scan per value. */
const MAX_BRANCHES = 32;

const iso = (time: string) => new Date(Date.parse(time)).toISOString();

/**
 * The SQL for a message query. Every index it relies on ends in (ts, id[, sender]), so a scan
 * reads rows in query order and stops at `limit`, and paging is keyset (the cursor is the
 * last (ts, id, sender) returned). A list of senders or recipients becomes one such scan per
 * value, merged in order (PostgreSQL's Merge Append reads about `limit` rows in all, not
 * `limit` per value); a caller's visibility scope is two such lists. Long lists (more than
 * MAX_BRANCHES values) are filters on a single scan instead, whose plan PostgreSQL picks.
 */
export function buildQuery(table: string, q: MessageQuery): { text: string; values: unknown[] } {
  const values: unknown[] = [];
  const p = (value: unknown, cast = '') => `$${values.push(value)}${cast}`;
  const desc = q.order === 'desc';
  const filters: string[] = [];
  if (q.since) filters.push(`ts >= ${p(iso(q.since), '::timestamptz')}`);
  if (q.until) filters.push(`ts < ${p(iso(q.until), '::timestamptz')}`);
  if (q.type) filters.push(`type = ANY(${p(q.type, '::text[]')})`);
  if (q.tags?.length) filters.push(`tags @> ${p(q.tags.map(columnTag), '::text[]')}`);
  if (q.cursor) {
    const [ts, id, from] = decodeCursor(q.cursor, ['string', 'string', 'string']) as [string, string, string];
    if (!Number.isFinite(Date.parse(ts))) throw new NitrogenError('NITROGEN_ERR_VALIDATION', 'cursor: is not a cursor this server issued', { details: { field: 'cursor' } });
    filters.push(`(ts, id, sender) ${desc ? '<' : '>'} (${p(iso(ts), '::timestamptz')}, ${p(id)}, ${p(from)})`);
  }

  // The list the scan is driven by, one branch per value, if one is short enough; the lists
  // that do not drive are filters (an empty one matches nothing: `= ANY('{}')`).
  const fits = (n: number) => n >= 1 && n <= MAX_BRANCHES;
  const driver = q.from && fits(q.from.length) ? 'from' : q.to && fits(q.to.length) ? 'to' : q.scope && fits(q.scope.from.length + q.scope.to.length) ? 'scope' : null;
  if (q.from && driver !== 'from') filters.push(`sender = ANY(${p(q.from, '::text[]')})`);
  if (q.to && driver !== 'to') filters.push(`recipient = ANY(${p(q.to, '::text[]')})`);
  if (q.scope && driver !== 'scope') filters.push(`(sender = ANY(${p(q.scope.from, '::text[]')}) OR recipient = ANY(${p(q.scope.to, '::text[]')}))`);
  const equal = (column: string, list: string[], extra = '') => list.map((v) => `${column} = ${p(v)}${extra}`);
  let branches: string[] = [];
  if (driver === 'from') branches = equal('sender', q.from!);
  else if (driver === 'to') branches = equal('recipient', q.to!);
  else if (driver === 'scope') {
    // A message both from and to the scope is found by its sender's branch only.
    const senders = q.scope!.from.length ? ` AND NOT sender = ANY(${p(q.scope!.from, '::text[]')})` : '';
    branches = [...equal('sender', q.scope!.from), ...equal('recipient', q.scope!.to, senders)];
  }

  const direction = desc ? 'DESC' : 'ASC';
  const order = `ORDER BY ts ${direction}, id ${direction}, sender ${direction}`;
  const limit = p(q.limit + 1);
  const where = (extra?: string) => {
    const all = extra ? [extra, ...filters] : filters;
    return all.length ? `WHERE ${all.join(' AND ')}` : '';
  };
  if (branches.length <= 1) return { text: `SELECT envelope FROM ${table} ${where(branches[0])} ${order} LIMIT ${limit}`, values };
  const parts = branches.map((b) => `(SELECT ts, id, sender, envelope FROM ${table} ${where(b)} ${order} LIMIT ${limit})`);
  return { text: `SELECT envelope FROM (${parts.join(' UNION ALL ')}) u ${order} LIMIT ${limit}`, values };
}
