import type pg from 'pg';
import { z } from 'zod';
import { encodeCursor } from '../../core/cursor.js';
import { earliestRecordPosition, formatRecordPosition, parseRecordPosition } from '../../core/feed-position.js';
import type { Logger } from '../../core/logger.js';
import { encodeMessage, type Message } from '../../core/message.js';
import type { Page } from '../../core/ports/lifecycle.js';
import type { FeedBatch, FeedPosition, MessageQuery, Store } from '../../core/ports/store.js';
import { ident, PostgresConnectionOptions, storeError, transaction } from './connection.js';
import { PostgresFeed, recordsOf, STATEMENT_CHARS } from './feed.js';
import { buildQuery, columnTag, TAG_SEPARATOR } from './query.js';
import { openMigrated } from './schema.js';

export const PostgresStoreOptions = PostgresConnectionOptions.extend({
  /**
   * Appends the group commit runs at once, each on its own connection: while one waits for
   * its commit, the next inserts its rows. Keep it below `poolSize`, which queries share.
   */
  appendConcurrency: z.number().int().min(1).max(64).default(4),
});
export type PostgresStoreOptions = z.output<typeof PostgresStoreOptions>;

/** Rows a retention purge deletes per statement (and transaction), and statements per call. */
const PURGE_SLICE = 10_000;
const PURGE_SLICES_PER_CALL = 100;

const senderAndId = (m: Message) => `${m.from}\u0000${m.id}`;

/**
 * The envelopes as one text that PostgreSQL splits at U+0001 (`string_to_array`): JSON text
 * never holds that character raw (RFC 8259 §7: control characters in strings are escaped), and
 * one text costs no per-message escaping, where an array literal escapes every quote of every
 * envelope (the largest cost of an append on this side). Counting the separators is one pass.
 */
function joinEnvelopes(envelopes: string[]): string {
  const joined = envelopes.join('\u0001');
  let separators = 0;
  for (let at = joined.indexOf('\u0001'); at !== -1 && separators < envelopes.length; at = joined.indexOf('\u0001', at + 1)) separators++;
  if (separators !== envelopes.length - 1) throw storeError('store messages', new Error('an envelope is not JSON text: it holds the character U+0001'));
  return joined;
}

/** `messages` cut into runs of at most STATEMENT_CHARS envelope characters (a larger envelope alone). */
export function statementChunks(messages: Message[]): Message[][] {
  const chunks: Message[][] = [];
  let start = 0;
  let chars = 0;
  for (let i = 0; i < messages.length; i++) {
    const size = encodeMessage(messages[i]!).length;
    if (i > start && chars + size > STATEMENT_CHARS) {
      chunks.push(messages.slice(start, i));
      start = i;
      chars = 0;
    }
    chars += size;
  }
  chunks.push(messages.slice(start));
  return chunks;
}

/**
 * The Store on PostgreSQL, for one instance or several sharing a database.
 *
 * An append is one transaction: the message rows in one multi-row insert (`unnest` of one
 * array per column) that skips the (id, sender) keys already stored, then the feed records of
 * the messages it stored (feed.ts), then COMMIT, which returns once the commit is flushed
 * (`synchronous_commit`): only then does `append` resolve. Messages and feed commit together,
 * so no message is ever stored without being fed, or fed without being stored.
 */
export class PostgresStore implements Store {
  readonly appendConcurrency: number;
  private pool?: pg.Pool;
  private readonly schema: string;
  private readonly feed: PostgresFeed;

  constructor(
    private readonly options: PostgresStoreOptions,
    private readonly logger?: Logger,
  ) {
    this.appendConcurrency = options.appendConcurrency;
    this.schema = ident(options.schema);
    this.feed = new PostgresFeed(this.schema);
  }

  private get db(): pg.Pool {
    if (!this.pool) throw storeError('serve a request', new Error('the store is not started'));
    return this.pool;
  }

  async start(): Promise<void> {
    this.pool = await openMigrated(this.options, 'store', this.logger);
  }

  async stop(): Promise<void> {
    const pool = this.pool;
    this.pool = undefined;
    await pool?.end();
  }

  async append(batch: Message[]): Promise<void> {
    const seen = new Set<string>();
    const unique = batch.filter((m) => !seen.has(senderAndId(m)) && seen.add(senderAndId(m))); // the first copy wins
    if (unique.length === 0) return;
    const chunks = statementChunks(unique);
    try {
      await transaction(this.db, async (client) => {
        let inserted = 0;
        for (const chunk of chunks) inserted += await this.insertRows(client, chunk);
        let fed = unique;
        if (inserted !== unique.length) {
          // Some were stored before (by an earlier append, or another instance's): they were fed then.
          const { rows } = await client.query<{ id: string; sender: string }>(
            `SELECT m.id, m.sender FROM ${this.schema}.messages m JOIN unnest($1::text[], $2::text[]) AS k(id, sender) ON m.id = k.id AND m.sender = k.sender
             WHERE m.batch <> pg_current_xact_id()`,
            [unique.map((m) => m.id), unique.map((m) => m.from)],
          );
          const earlier = new Set(rows.map((r) => `${r.sender}\u0000${r.id}`));
          fed = unique.filter((m) => !earlier.has(senderAndId(m)));
        }
        if (fed.length > 0) await this.feed.publish(client, recordsOf(fed.map(encodeMessage)));
      });
    } catch (err) {
      throw storeError('store messages', err);
    }
  }

  /** One multi-row insert of `messages`, skipping keys already stored; returns how many it inserted. */
  private async insertRows(client: pg.ClientBase, messages: Message[]): Promise<number> {
    const columns = { id: [] as string[], sender: [] as string[], ts: [] as string[], recipient: [] as (string | null)[], type: [] as string[], tags: [] as (string | null)[], expires: [] as (string | null)[], envelope: [] as string[] };
    for (const m of messages) {
      columns.id.push(m.id);
      columns.sender.push(m.from);
      columns.ts.push(m.ts);
      columns.recipient.push(m.to ?? null);
      columns.type.push(m.type);
      columns.tags.push(m.tags?.length ? m.tags.map(columnTag).join(TAG_SEPARATOR) : null);
      columns.expires.push(m.expires ?? null);
      columns.envelope.push(encodeMessage(m));
    }
    const result = await client.query(
      `INSERT INTO ${this.schema}.messages (id, sender, ts, recipient, type, tags, expires, envelope)
       SELECT id, sender, ts::timestamptz, recipient, type, string_to_array(tags, chr(1)), expires::timestamptz, envelope
       FROM ROWS FROM (unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[]), unnest(string_to_array($8::text, chr(1))))
         AS m(id, sender, ts, recipient, type, tags, expires, envelope)
       ON CONFLICT (id, sender) DO NOTHING`,
      [columns.id, columns.sender, columns.ts, columns.recipient, columns.type, columns.tags, columns.expires, joinEnvelopes(columns.envelope)],
    );
    return result.rowCount ?? 0;
  }

  /** The message with this id; when several senders chose it, the one stored first. */
  async get(id: string, from?: string): Promise<Message | null> {
    try {
      const { rows } =
        from === undefined
          ? await this.db.query<{ envelope: string }>(`SELECT envelope FROM ${this.schema}.messages WHERE id = $1 ORDER BY batch LIMIT 1`, [id])
          : await this.db.query<{ envelope: string }>(`SELECT envelope FROM ${this.schema}.messages WHERE id = $1 AND sender = $2`, [id, from]);
      return rows[0] ? (JSON.parse(rows[0].envelope) as Message) : null;
    } catch (err) {
      throw storeError('read a message', err);
    }
  }

  async query(q: MessageQuery): Promise<Page<Message>> {
    const { text, values } = buildQuery(`${this.schema}.messages`, q);
    let rows: { envelope: string }[];
    try {
      rows = (await this.db.query<{ envelope: string }>(text, values)).rows;
    } catch (err) {
      throw storeError('query messages', err);
    }
    const items = rows.slice(0, q.limit).map((r) => JSON.parse(r.envelope) as Message);
    const last = items[items.length - 1];
    return { items, next: rows.length > q.limit && last ? encodeCursor([last.ts, last.id, last.from]) : null };
  }

  /**
   * Deletes expired messages and, with `olderThan`, old ones; with `keepAfter`, only those whose
   * batch every reader has passed in the feed. With `olderThan`, feed records older than it and
   * behind every reader go too. Slices of PURGE_SLICE rows, each its own short transaction.
   */
  async purgeExpired(now: Date, olderThan?: Date, keepAfter: (FeedPosition | null)[] = []): Promise<number> {
    const passedBy = earliestRecordPosition(keepAfter);
    if (keepAfter.length > 0 && passedBy === null) return 0; // a reader at the very start keeps everything
    const s = this.schema;
    const values: unknown[] = [now.toISOString()];
    const due = [`m.expires < $1::timestamptz`];
    if (olderThan) due.push(`m.ts < $${values.push(olderThan.toISOString())}::timestamptz`);
    let where = `(${due.join(' OR ')})`;
    if (passedBy) where += ` AND ${this.feed.passedCondition(`$${values.push(passedBy.seq)}::bigint`, `$${values.push(passedBy.index)}::integer`)}`;
    try {
      const purged = await this.sliced(`DELETE FROM ${s}.messages WHERE ctid = ANY(ARRAY(SELECT ctid FROM ${s}.messages m WHERE ${where} LIMIT ${PURGE_SLICE}))`, values);
      if (olderThan) {
        const feedValues: unknown[] = [olderThan.toISOString()];
        const behind = passedBy ? ` AND (seq < $${feedValues.push(passedBy.seq)}::bigint OR (seq = $2 AND n - 1 <= $${feedValues.push(passedBy.index)}::integer))` : '';
        await this.sliced(`DELETE FROM ${s}.feed WHERE seq = ANY(ARRAY(SELECT seq FROM ${s}.feed WHERE at < $1::timestamptz${behind} ORDER BY seq LIMIT ${PURGE_SLICE}))`, feedValues);
      }
      return purged;
    } catch (err) {
      throw storeError('purge messages', err);
    }
  }

  private async sliced(sql: string, values: unknown[]): Promise<number> {
    let total = 0;
    for (let slice = 0; slice < PURGE_SLICES_PER_CALL; slice++) {
      const deleted = (await this.db.query(sql, values)).rowCount ?? 0;
      total += deleted;
      if (deleted < PURGE_SLICE) break;
    }
    return total;
  }

  async readFeed(after: FeedPosition | null, limit: number): Promise<FeedBatch> {
    const position = parseRecordPosition(after);
    try {
      const entries = (await this.feed.after(this.db, position, limit)).slice(0, limit);
      const last = entries[entries.length - 1];
      return { messages: entries.map((e) => e.message), position: last ? formatRecordPosition(last.position) : after };
    } catch (err) {
      throw storeError('read the feed', err);
    }
  }

  async feedLag(after: FeedPosition | null): Promise<{ count: number; oldestTs: string | null }> {
    const position = parseRecordPosition(after);
    try {
      return await this.feed.lag(this.db, position);
    } catch (err) {
      throw storeError('read the feed', err);
    }
  }

  async getCheckpoint(consumer: string): Promise<FeedPosition | null> {
    try {
      const { rows } = await this.db.query<{ position: string }>(`SELECT position FROM ${this.schema}.checkpoints WHERE consumer = $1`, [consumer]);
      return rows[0]?.position ?? null;
    } catch (err) {
      throw storeError('read a checkpoint', err);
    }
  }

  async setCheckpoint(consumer: string, position: FeedPosition): Promise<void> {
    parseRecordPosition(position);
    try {
      await this.db.query(
        `INSERT INTO ${this.schema}.checkpoints (consumer, position, updated_at) VALUES ($1, $2, now())
         ON CONFLICT (consumer) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at`,
        [consumer, position],
      );
    } catch (err) {
      throw storeError('write a checkpoint', err);
    }
  }
}
