import type pg from 'pg';
import type { RecordPosition } from '../../core/feed-position.js';
import type { Message } from '../../core/message.js';

/**
 * Envelope characters per feed record: a record is read and parsed whole, so a reader asking
 * for a few hundred messages parses at most about this much beyond them. An envelope larger
 * than this gets a record of its own.
 */
const RECORD_CHARS = 256 * 1024;

/**
 * Envelope characters per statement, for the message rows and the feed records alike. A group
 * commit's batch is usually one statement of each; thousands of messages near `maxMessageBytes`
 * are cut, since a JavaScript string, a PostgreSQL value and a protocol message each stop well
 * below the gigabyte such a batch could reach.
 */
export const STATEMENT_CHARS = 16 * 1024 * 1024;

export interface FeedRecord {
  n: number;
  /** The envelopes as one JSON array text. */
  items: string;
}

/** Cuts envelopes (JSON texts, in feed order) into records of at most RECORD_CHARS characters. */
export function recordsOf(envelopes: string[]): FeedRecord[] {
  const records: FeedRecord[] = [];
  let start = 0;
  let chars = 0;
  for (let i = 0; i < envelopes.length; i++) {
    const size = envelopes[i]!.length + 1;
    if (i > start && chars + size > RECORD_CHARS) {
      records.push({ n: i - start, items: `[${envelopes.slice(start, i).join(',')}]` });
      start = i;
      chars = 0;
    }
    chars += size;
  }
  if (envelopes.length > start) records.push({ n: envelopes.length - start, items: `[${envelopes.slice(start).join(',')}]` });
  return records;
}

/**
 * The commit-ordered feed on PostgreSQL: records numbered 1, 2, 3, … with no hole, ever, in
 * the order their transactions commit.
 *
 * A sequence would not do: a transaction that took number 10 may commit after the one that
 * took 11, and a reader that saw 11 and moved past it would never read 10. Here the numbers
 * come from the single row of `feed_head`, which the append's last statement updates: the
 * row lock it takes is held until the transaction ends, so the next appender (on this
 * instance or another) reads the head only after this transaction committed or rolled back.
 * A rolled-back append gives its numbers back with it. So when a reader sees record n, every
 * record below n is committed and visible to it too (PostgreSQL releases a transaction's locks
 * only after its commit is visible), and "after position p" never skips one.
 *
 * The lock is held only from the feed statement to the end of the commit (its WAL flush);
 * the message rows, the expensive part, are inserted before it, by several appends at once.
 * Records hold the envelopes themselves, so what sinks read does not depend on message rows
 * that retention deleted; `batch` (the transaction id) ties them to their message rows.
 */
export class PostgresFeed {
  constructor(private readonly schema: string) {}

  /**
   * Inside the append's transaction, as its last statements: numbers and inserts the records.
   * The first statement takes the head's lock, so records inserted by further statements (a
   * batch larger than STATEMENT_CHARS) get the numbers right after, with no one in between.
   */
  async publish(client: pg.ClientBase, records: FeedRecord[]): Promise<void> {
    for (let start = 0; start < records.length;) {
      let end = start;
      for (let chars = 0; end < records.length && (end === start || chars + records[end]!.items.length <= STATEMENT_CHARS); end++) chars += records[end]!.items.length;
      const values: unknown[] = [end - start];
      const rows = records.slice(start, end).map((r, i) => `(${i + 1}, $${values.push(r.n)}::integer, $${values.push(r.items)}::text)`);
      await client.query(
        `WITH head AS (UPDATE ${this.schema}.feed_head SET seq = seq + $1 RETURNING seq)
         INSERT INTO ${this.schema}.feed (seq, at, batch, n, items)
         SELECT head.seq - $1 + r.i, clock_timestamp(), pg_current_xact_id(), r.n, r.items FROM head, (VALUES ${rows.join(', ')}) AS r(i, n, items)`,
        values,
      );
      start = end;
    }
  }

  /**
   * The last record read, parsed: a reader asking for fewer messages than a record holds comes
   * back for the rest of it, which is then neither fetched nor parsed again. Records never
   * change once committed, so a record number names its content for good.
   */
  private lastRead?: { seq: number; items: Message[] };

  /** The messages after `position` in feed order, each with its position: at least `limit` when there are. */
  async after(db: pg.Pool, position: RecordPosition, limit: number): Promise<Array<{ message: Message; position: RecordPosition }>> {
    const out: Array<{ message: Message; position: RecordPosition }> = [];
    const take = (seq: number, items: Message[]) => {
      for (let index = seq === position.seq ? position.index + 1 : 0; index < items.length; index++) out.push({ message: items[index]!, position: { seq, index } });
    };
    let from = position.seq;
    if (this.lastRead?.seq === position.seq) {
      take(position.seq, this.lastRead.items);
      from++;
    }
    // Records hold up to ~1,000 small messages; a few at a time keeps a read near `limit`.
    for (let count = 2; out.length < limit; count = Math.min(count * 2, 64)) {
      const { rows } = await db.query<{ seq: string; items: string }>(`SELECT seq, items FROM ${this.schema}.feed WHERE seq >= $1 ORDER BY seq LIMIT $2`, [from, count]);
      for (const row of rows) {
        const seq = Number(row.seq);
        const items = JSON.parse(row.items) as Message[];
        take(seq, items);
        this.lastRead = { seq, items };
        from = seq + 1;
      }
      if (rows.length < count) break;
    }
    return out;
  }

  /** Messages after `position` and the commit time of the oldest of them. */
  async lag(db: pg.Pool, position: RecordPosition): Promise<{ count: number; oldestTs: string | null }> {
    const { rows } = await db.query<{ count: string; oldest: Date | null }>(
      `SELECT coalesce(sum(unread), 0) AS count, min(at) FILTER (WHERE unread > 0) AS oldest
       FROM (SELECT at, CASE WHEN seq = $1 THEN n - $2 - 1 ELSE n END AS unread FROM ${this.schema}.feed WHERE seq >= $1) f`,
      [position.seq, position.index],
    );
    return { count: Number(rows[0]!.count), oldestTs: rows[0]!.oldest?.toISOString() ?? null };
  }

  /**
   * SQL true for a message row (alias `m`) whose batch every reader at `$seq:$index` has passed:
   * no record of its batch holds a message after that position. Records behind every reader
   * may have been deleted; that changes nothing, they were passed.
   */
  passedCondition(seq: string, index: string): string {
    return `NOT EXISTS (SELECT 1 FROM ${this.schema}.feed f WHERE f.batch = m.batch AND (f.seq > ${seq} OR (f.seq = ${seq} AND f.n - 1 > ${index})))`;
  }
}
