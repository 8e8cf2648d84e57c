import type Database from 'better-sqlite3';
import type { Message } from '../../core/message.js';
import type { MessageQuery } from '../../core/ports/store.js';
import { hitOrder, recordMatches, type Bounds } from './matching.js';
import { readRecord, readRecords, recordLength, recordTs, type MessageRecord } from './record.js';
import { CHUNK_SPAN_MS } from './schema.js';

interface ChunkMeta {
  chunk: number;
  tsMin: number;
  tsMax: number;
}

interface Compaction {
  seq_last: number;
  seq_first: number;
  chunk_first: number;
  chunk_last: number;
  count: number;
}

/** Beyond every time and chunk number: the open end of a keyset scan. */
const END = 9e15;
/** Chunk summaries fetched per step of a scan. */
const SCAN_BATCH = 64;
/** Ids looked up per statement by the idempotency check. */
const PROBE = 64;
/** Compactions kept decoded for feed readers that read one in several batches. */
const FEED_CACHE = 2;

/**
 * Reads chunks on the main thread's read-only connection (WAL lets it read beside the
 * compactor's writes). Callers run these inside one read transaction together with
 * `compacted()`, so that what they read here and what they read in the tail never overlap.
 */
export class ChunkReader {
  private readonly sql;
  private readonly scans = new Map<string, Database.Statement<(string | number)[], ChunkMeta>>();
  private feedCache = new Map<number, MessageRecord[]>();
  private readonly probeIds = new Array<string | null>(PROBE);

  constructor(private readonly db: Database.Database) {
    this.sql = {
      compacted: db.prepare<[], number>("SELECT value FROM meta WHERE key = 'compacted'").pluck(),
      data: db.prepare<[number], Buffer>('SELECT data FROM chunks WHERE chunk = ?').pluck(),
      chunksOfId: db.prepare<[string], number>('SELECT chunk FROM ids WHERE id = ?').pluck(),
      existing: db.prepare<(string | null)[], { id: string; sender: string }>(`SELECT ids.id AS id, chunks.sender AS sender FROM ids JOIN chunks ON chunks.chunk = ids.chunk WHERE ids.id IN (${Array(PROBE).fill('?').join(', ')})`),
      compactionAfter: db.prepare<[number], Compaction>('SELECT * FROM compactions WHERE seq_last > ? ORDER BY seq_last LIMIT 1'),
      countAfter: db.prepare<[number], number>('SELECT coalesce(sum(count), 0) FROM compactions WHERE seq_last > ?').pluck(),
      chunksOf: db.prepare<[number, number], Buffer>('SELECT data FROM chunks WHERE chunk BETWEEN ? AND ?').pluck(),
      checkpoint: db.prepare<[string], number>('SELECT position FROM checkpoints WHERE consumer = ?').pluck(),
    };
  }

  /** Every message up to this sequence number is in chunks; the tail holds the ones after. */
  compacted(): number {
    return this.sql.compacted.get() ?? 0;
  }

  checkpoint(consumer: string): number | undefined {
    return this.sql.checkpoint.get(consumer);
  }

  /**
   * Which of these (from, id) pairs are stored, as `from\0id` keys: the idempotency check. A
   * statement looks up PROBE ids at once, which costs a third of a json_each list and a
   * fifteenth of one statement per id.
   */
  existing(messages: readonly Message[]): Set<string> {
    const found = new Set<string>();
    const ids = this.probeIds;
    for (let i = 0; i < messages.length; i += PROBE) {
      for (let k = 0; k < PROBE; k++) ids[k] = messages[i + k]?.id ?? null;
      for (const row of this.sql.existing.all(...ids)) found.add(`${row.sender}\u0000${row.id}`);
    }
    return found;
  }

  /** The message with this id from `from`, or without `from` the first stored with this id. */
  get(id: string, from?: string): MessageRecord | undefined {
    let first: MessageRecord | undefined;
    for (const chunk of this.sql.chunksOfId.all(id)) {
      const data = this.sql.data.get(chunk);
      if (!data) continue;
      for (const record of readRecords(data)) {
        if (record.id === id && (from === undefined || record.from === from) && (!first || record.seq < first.seq)) first = record;
      }
    }
    return first;
  }

  /**
   * The first `want` messages in chunks that match, in the query's order. Chunks are visited in
   * order of ts_min (ascending) or ts_min descending; since a chunk spans less than
   * CHUNK_SPAN_MS, the scan knows when no later chunk can hold anything better than what it has.
   */
  query(query: MessageQuery, bounds: Bounds, want: number): MessageRecord[] {
    const { desc } = bounds;
    const { statement, params } = this.scan(query, bounds);
    const order = hitOrder(desc);
    let hits: MessageRecord[] = [];
    let worst: MessageRecord | undefined;
    let key = desc ? [END, END, END] : [-END, -END, -END];
    scan: for (;;) {
      // Descending, a chunk ending before the worst kept hit cannot improve on it: skip it in the index.
      const floor = Math.max(-END, bounds.lo, desc && worst ? worst.ts : -END);
      const metas = statement.all(...params, floor, ...key, SCAN_BATCH);
      for (const meta of metas) {
        key = [meta.tsMin, meta.tsMax, meta.chunk];
        if (worst) {
          if (!desc && worst.ts < meta.tsMin) break scan;
          if (desc && worst.ts >= meta.tsMin + CHUNK_SPAN_MS) break scan;
          if (desc && meta.tsMax < worst.ts) continue;
        }
        const data = this.sql.data.get(meta.chunk);
        if (!data) continue;
        for (let at = 0; at < data.length; at += recordLength(data, at)) {
          // Records are in (ts, id) order: ascending, past the worst kept hit nothing in this chunk can do better.
          const ts = recordTs(data, at);
          if (worst && (desc ? ts < worst.ts : ts > worst.ts)) {
            if (desc) continue;
            break;
          }
          const record = readRecord(data, at);
          if (recordMatches(record, query, bounds)) hits.push(record);
        }
        if (hits.length >= want) {
          hits.sort(order);
          hits.length = want;
          worst = hits[want - 1];
        }
      }
      if (metas.length < SCAN_BATCH) break;
    }
    hits.sort(order);
    if (hits.length > want) hits = hits.slice(0, want);
    return hits;
  }

  /**
   * The scan of chunk summaries for a query: filters that hold for whole chunks (sender, type,
   * recipient, scope, the first tag) and the time range; then the lower bound on ts_max and the
   * keyset position, bound per step.
   */
  private scan(query: MessageQuery, bounds: Bounds): { statement: Database.Statement<(string | number)[], ChunkMeta>; params: (string | number)[] } {
    const where: string[] = [];
    const params: (string | number)[] = [];
    const tagged = (query.tags?.length ?? 0) > 0;
    const t = tagged ? 't' : 'c';
    const list = (column: string, values: string[]) => {
      if (values.length === 1) where.push(`${column} = ?`);
      else where.push(`${column} IN (SELECT value FROM json_each(?))`);
      params.push(values.length === 1 ? values[0]! : JSON.stringify(values));
    };
    if (tagged) {
      where.push('t.tag = ?');
      params.push(query.tags![0]!);
    }
    if (query.from) list('c.sender', query.from);
    if (query.to) list('c.recipient', query.to);
    if (query.type) list('c.type', query.type);
    if (query.scope) {
      where.push('(c.sender IN (SELECT value FROM json_each(?)) OR c.recipient IN (SELECT value FROM json_each(?)))');
      params.push(JSON.stringify(query.scope.from), JSON.stringify(query.scope.to));
    }
    // A chunk spans less than CHUNK_SPAN_MS: one that reaches `lo` starts after lo - CHUNK_SPAN_MS.
    if (bounds.lo > -Infinity) {
      where.push(`${t}.ts_min > ?`);
      params.push(bounds.lo - CHUNK_SPAN_MS);
    }
    if (bounds.hi < Infinity) {
      where.push(`${t}.ts_min <= ?`);
      params.push(bounds.hi);
    }
    if (bounds.until < Infinity) {
      where.push(`${t}.ts_min < ?`);
      params.push(bounds.until);
    }
    const dir = bounds.desc ? 'DESC' : 'ASC';
    where.push(`${t}.ts_max >= ?`, `(${t}.ts_min, ${t}.ts_max, ${t}.chunk) ${bounds.desc ? '<' : '>'} (?, ?, ?)`);
    const sql =
      `SELECT ${t}.chunk AS chunk, ${t}.ts_min AS tsMin, ${t}.ts_max AS tsMax FROM ${tagged ? 'chunk_tags t JOIN chunks c ON c.chunk = t.chunk' : 'chunks c'} ` +
      `WHERE ${where.join(' AND ')} ORDER BY ${t}.ts_min ${dir}, ${t}.ts_max ${dir}, ${t}.chunk ${dir} LIMIT ?`;
    let statement = this.scans.get(sql);
    if (!statement) {
      statement = this.db.prepare<(string | number)[], ChunkMeta>(sql);
      if (this.scans.size >= 256) this.scans.clear();
      this.scans.set(sql, statement);
    }
    return { statement, params };
  }

  /** Up to `limit` messages in chunks after sequence number `after`, in sequence order. */
  feed(after: number, limit: number): MessageRecord[] {
    const hits: MessageRecord[] = [];
    let position = after;
    while (hits.length < limit) {
      const compaction = this.sql.compactionAfter.get(position);
      if (!compaction) break;
      const sorted = this.compaction(compaction);
      for (let i = firstAfter(sorted, position); i < sorted.length && hits.length < limit; i++) hits.push(sorted[i]!);
      position = compaction.seq_last;
    }
    return hits;
  }

  /** How many messages in chunks follow sequence number `after`. */
  countAfter(after: number): number {
    const compaction = this.sql.compactionAfter.get(after);
    if (!compaction) return 0;
    let here = compaction.count;
    if (compaction.seq_first <= after) {
      const sorted = this.compaction(compaction);
      here = sorted.length - firstAfter(sorted, after);
    }
    return here + this.sql.countAfter.get(compaction.seq_last)!;
  }

  /** Forgets decoded compactions: a purge changed chunks. */
  invalidate(): void {
    this.feedCache.clear();
  }

  /** A compaction's messages in sequence order (a compaction's chunks interleave in it). */
  private compaction(compaction: Compaction): MessageRecord[] {
    let sorted = this.feedCache.get(compaction.seq_last);
    if (!sorted) {
      sorted = [];
      for (const data of this.sql.chunksOf.all(compaction.chunk_first, compaction.chunk_last)) {
        for (const record of readRecords(data)) sorted.push(record);
      }
      sorted.sort((a, b) => a.seq - b.seq);
      if (this.feedCache.size >= FEED_CACHE) this.feedCache.delete(this.feedCache.keys().next().value!);
      this.feedCache.set(compaction.seq_last, sorted);
    }
    return sorted;
  }
}

function firstAfter(sorted: MessageRecord[], seq: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]!.seq <= seq) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
