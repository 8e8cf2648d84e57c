import { odata, type TableClient } from '@azure/data-tables';
import { decodeCursor, encodeCursor } from '../../core/cursor.js';
import { NitrogenError } from '../../core/errors.js';
import type { Message } from '../../core/message.js';
import type { Page } from '../../core/ports/lifecycle.js';
import type { MessageQuery } from '../../core/ports/store.js';
import { matchesQuery } from '../../core/query.js';
import { storeError } from './connection.js';
import { fieldsOfRow, invertedTimeKey, isStorableId, SHARDS, streamKey, streams, timeKey, type IndexFields, type IndexRow } from './keys.js';

/** Beyond this many partitions (e.g. a scope of thousands of devices) a query scans a broader stream instead. */
const MAX_STREAMS = 64;
const SHARD_NUMBERS = Array.from({ length: SHARDS }, (_, i) => i);

/**
 * The partitions a query scans: the most selective stream it names, in this order of
 * preference: senders, recipients, the visibility scope, types, the first tag, everything.
 * Every other condition is checked on the index rows, which carry the fields for that.
 */
function planStreams(q: MessageQuery): string[] {
  const candidates: string[][] = [];
  if (q.from) candidates.push(q.from.map(streams.from));
  if (q.to) candidates.push(q.to.map(streams.to));
  if (q.scope) candidates.push([...q.scope.from.map(streams.from), ...q.scope.to.map(streams.to)]);
  if (q.type) candidates.push(q.type.flatMap((type) => SHARD_NUMBERS.map((s) => streams.type(type, s))));
  if (q.tags?.length) candidates.push(SHARD_NUMBERS.map((s) => streams.tag(q.tags![0]!, s)));
  candidates.push(SHARD_NUMBERS.map(streams.all));
  return [...new Set(candidates.find((c) => c.length <= MAX_STREAMS))];
}

interface Range {
  low: string;
  high: string;
  after?: string;
}

/** RowKey bounds of a query: `low` inclusive, `high` exclusive, `after` the cursor (exclusive). */
function rangeOf(q: MessageQuery): Range | null {
  const since = q.since === undefined ? undefined : Date.parse(q.since);
  const until = q.until === undefined ? undefined : Date.parse(q.until);
  let after: string | undefined;
  if (q.cursor) {
    // (ts, id, sender) of the last message returned: two senders may share a (ts, id).
    const [ts, id, from] = decodeCursor(q.cursor, ['string', 'string', 'string']) as [string, string, string];
    const ms = Date.parse(ts);
    if (!(ms >= 0 && ms < 10 ** 15) || !isStorableId(id)) throw new NitrogenError('NITROGEN_ERR_VALIDATION', 'cursor: is not a cursor this server issued', { details: { field: 'cursor' } });
    after = streamKey(q.order, ts, id, from);
  }
  if (until !== undefined && until <= 0) return null;
  if (q.order === 'asc') {
    return {
      low: since === undefined ? 'A' : 'A' + timeKey(Math.max(since, 0)),
      high: until === undefined ? 'B' : 'A' + timeKey(until),
      after,
    };
  }
  return {
    low: until === undefined ? 'D' : 'D' + invertedTimeKey(until - 1),
    high: since === undefined || since <= 0 ? 'E' : 'D' + invertedTimeKey(since - 1),
    after,
  };
}

/** Reads one partition's index rows in RowKey order, a page at a time. */
class StreamReader {
  private rows: IndexRow[] = [];
  private index = 0;
  private done = false;
  private readonly pages: AsyncIterator<IndexRow[]>;

  constructor(client: TableClient, partitionKey: string, range: Range, pageSize: number) {
    let filter = odata`PartitionKey eq ${partitionKey} and RowKey ge ${range.low} and RowKey lt ${range.high}`;
    if (range.after !== undefined) filter += odata` and RowKey gt ${range.after}`;
    this.pages = client.listEntities<IndexRow>({ queryOptions: { filter } }).byPage({ maxPageSize: pageSize })[Symbol.asyncIterator]() as AsyncIterator<IndexRow[]>;
  }

  async peek(): Promise<IndexRow | undefined> {
    while (this.index >= this.rows.length && !this.done) {
      const page = await this.pages.next();
      if (page.done) this.done = true;
      else {
        this.rows = page.value;
        this.index = 0;
      }
    }
    return this.rows[this.index];
  }

  next(): void {
    this.index++;
  }
}

/**
 * Runs a query: merges the planned partitions' rows in RowKey order (which is (ts, id) order
 * in the query's direction), drops the same message seen in two partitions, keeps rows that
 * match, and reads the full messages of one page. Keyset paging on the RowKey stays correct
 * while messages are appended.
 */
export async function runQuery(client: TableClient, q: MessageQuery, fetch: (keys: IndexFields[]) => Promise<Map<string, Message>>): Promise<Page<Message>> {
  const range = rangeOf(q);
  if (!range) return { items: [], next: null };
  const pageSize = Math.min(1000, Math.max(q.limit + 1, 100));
  const readers = planStreams(q).map((pk) => new StreamReader(client, pk, range, pageSize));
  const matched: Array<{ fields: IndexFields; envelope?: string }> = [];
  let lastKey: string | undefined;
  try {
    await Promise.all(readers.map((r) => r.peek()));
    while (matched.length <= q.limit) {
      let best: StreamReader | undefined;
      let bestRow: IndexRow | undefined;
      for (const reader of readers) {
        const row = await reader.peek();
        if (row && (!bestRow || row.rowKey < bestRow.rowKey)) {
          best = reader;
          bestRow = row;
        }
      }
      if (!best || !bestRow) break;
      best.next();
      if (bestRow.rowKey === lastKey) continue;
      lastKey = bestRow.rowKey;
      const fields = fieldsOfRow(bestRow);
      if (matchesQuery(fields as Message, q)) matched.push({ fields, envelope: bestRow.m });
    }
  } catch (err) {
    throw storeError('query messages', err);
  }
  const page = matched.slice(0, q.limit);
  const fetched = await fetch(page.filter((p) => p.envelope === undefined).map((p) => p.fields));
  // A message purged since its index row was read is left out.
  const items = page.flatMap((p) => (p.envelope !== undefined ? [JSON.parse(p.envelope) as Message] : (fetched.get(`${p.fields.from}\u0000${p.fields.id}`) ?? [])));
  const last = page[page.length - 1]?.fields;
  return { items, next: matched.length > q.limit && last ? encodeCursor([last.ts, last.id, last.from]) : null };
}
