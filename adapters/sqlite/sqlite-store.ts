import Database from 'better-sqlite3';
import { resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import { decodeCursor, encodeCursor } from '../../core/cursor.js';
import { NitrogenError } from '../../core/errors.js';
import { encodeMessage, type Message } from '../../core/message.js';
import type { Page } from '../../core/ports/lifecycle.js';
import type { FeedBatch, FeedPosition, MessageQuery, Store } from '../../core/ports/store.js';
import { MESSAGE_SCHEMA, configureDurable, type MessageRow } from './schema.js';
import type { WriterReply, WriterRequest } from './writer-protocol.js';

export interface SqliteStoreOptions {
  /** Database file: an absolute path, or one relative to the data directory. */
  file: string;
}

type WriterRequestBody = WriterRequest extends infer R ? (R extends WriterRequest ? Omit<R, 'id'> : never) : never;
type Pending = { resolve: (result: number | undefined) => void; reject: (err: Error) => void };

const MAX_TIME = 8.64e15;

/**
 * The embedded default Store on SQLite (better-sqlite3): WAL with synchronous=FULL, written by
 * one worker thread (writer-worker.ts) and read on the main thread through a second
 * connection, which WAL lets run beside the writer. `seq` (commit order) is the feed position.
 */
export class SqliteStore implements Store {
  private reader!: Database.Database;
  private writer?: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private writerError?: Error;
  private readonly file: string;
  private statements!: ReturnType<SqliteStore['prepare']>;
  private readonly queryStatements = new Map<string, Database.Statement<(string | number)[], { envelope: string }>>();

  constructor(dataDir: string, options: SqliteStoreOptions) {
    this.file = resolve(dataDir, options.file);
  }

  async start(): Promise<void> {
    // Create the schema here first, so the reader can prepare its statements at once.
    const setup = new Database(this.file);
    configureDurable(setup);
    setup.exec(MESSAGE_SCHEMA);
    setup.close();
    this.reader = new Database(this.file, { readonly: true });
    this.statements = this.prepare(this.reader);
    this.writer = new Worker(new URL('./writer-worker.js', import.meta.url), { workerData: { file: this.file } });
    this.writer.on('message', (reply: WriterReply) => this.settle(reply));
    this.writer.on('error', (err) => this.failAll(err));
    this.writer.on('exit', (code) => {
      if (this.writer) this.failAll(new Error(`SQLite writer thread exited with code ${code}`));
    });
  }

  async stop(): Promise<void> {
    const writer = this.writer;
    this.writer = undefined;
    if (writer) {
      const exited = new Promise((resolve) => writer.once('exit', resolve));
      writer.postMessage('close');
      await exited;
    }
    this.failAll(new Error('store stopped'));
    if (this.reader?.open) this.reader.close();
  }

  private prepare(db: Database.Database) {
    return {
      get: db.prepare<[string], { envelope: string }>('SELECT envelope FROM messages WHERE id = ? ORDER BY seq LIMIT 1'),
      getFrom: db.prepare<[string, string], { envelope: string }>('SELECT envelope FROM messages WHERE id = ? AND sender = ?'),
      feed: db.prepare<[number, number], { seq: number; envelope: string }>('SELECT seq, envelope FROM messages WHERE seq > ? ORDER BY seq LIMIT ?'),
      checkpoint: db.prepare<[string], { position: number }>('SELECT position FROM checkpoints WHERE consumer = ?'),
      lag: db.prepare<[number], { count: number; oldest: number | null }>('SELECT count(*) AS count, min(committed) AS oldest FROM messages WHERE seq > ?'),
    };
  }

  private settle(reply: WriterReply): void {
    const waiter = this.pending.get(reply.id);
    if (!waiter) return;
    this.pending.delete(reply.id);
    if (reply.ok) waiter.resolve(reply.result);
    else waiter.reject(new NitrogenError('NITROGEN_ERR_STORE', `SQLite write failed: ${reply.error}`, { cause: Object.assign(new Error(reply.error), { code: reply.code }) }));
  }

  private failAll(err: Error): void {
    this.writerError = err;
    for (const waiter of this.pending.values()) waiter.reject(new NitrogenError('NITROGEN_ERR_STORE', err.message, { cause: err }));
    this.pending.clear();
  }

  private request(request: WriterRequestBody): Promise<number | undefined> {
    if (!this.writer) return Promise.reject(new NitrogenError('NITROGEN_ERR_UNAVAILABLE', 'store is not running', { cause: this.writerError }));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.writer!.postMessage({ ...request, id } as WriterRequest);
    });
  }

  async append(batch: Message[]): Promise<void> {
    const rows = new Array<MessageRow>(batch.length);
    for (let i = 0; i < batch.length; i++) {
      const m = batch[i]!;
      rows[i] = [m.id, Date.parse(m.ts), m.from, m.to ?? null, m.type, m.expires ? Date.parse(m.expires) : null, encodeMessage(m), m.tags?.length ? m.tags : null];
    }
    await this.request({ op: 'append', rows });
  }

  async get(id: string, from?: string): Promise<Message | null> {
    const row = from === undefined ? this.statements.get.get(id) : this.statements.getFrom.get(id, from);
    return row ? (JSON.parse(row.envelope) as Message) : null;
  }

  async query(query: MessageQuery): Promise<Page<Message>> {
    const where: string[] = [];
    const params: (string | number)[] = [];
    const list = (column: string, values: string[]) => {
      where.push(`${column} IN (SELECT value FROM json_each(?))`);
      params.push(JSON.stringify(values));
    };
    if (query.from) list('sender', query.from);
    if (query.to) list('recipient', query.to);
    if (query.type) list('type', query.type);
    for (const tag of query.tags ?? []) {
      where.push('seq IN (SELECT seq FROM message_tags WHERE tag = ?)');
      params.push(tag);
    }
    if (query.since) {
      where.push('ts >= ?');
      params.push(Date.parse(query.since));
    }
    if (query.until) {
      where.push('ts < ?');
      params.push(Date.parse(query.until));
    }
    if (query.scope) {
      where.push('(sender IN (SELECT value FROM json_each(?)) OR recipient IN (SELECT value FROM json_each(?)))');
      params.push(JSON.stringify(query.scope.from), JSON.stringify(query.scope.to));
    }
    const desc = query.order === 'desc';
    if (query.cursor) {
      const [ts, id, from] = decodeCursor(query.cursor, ['string', 'string', 'string']) as [string, string, string];
      const ms = Date.parse(ts);
      if (!(Math.abs(ms) <= MAX_TIME)) throw new NitrogenError('NITROGEN_ERR_VALIDATION', 'cursor: is not a cursor this server issued');
      where.push(desc ? '(ts, id, sender) < (?, ?, ?)' : '(ts, id, sender) > (?, ?, ?)');
      params.push(ms, id, from);
    }
    const sql = `SELECT envelope FROM messages ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY ts ${desc ? 'DESC' : 'ASC'}, id ${desc ? 'DESC' : 'ASC'}, sender ${desc ? 'DESC' : 'ASC'} LIMIT ?`;
    const rows = this.cachedStatement(sql).all(...params, query.limit + 1);
    const items = rows.slice(0, query.limit).map((row) => JSON.parse(row.envelope) as Message);
    const last = items[items.length - 1];
    return { items, next: rows.length > query.limit && last ? encodeCursor([last.ts, last.id, last.from]) : null };
  }

  /** Queries take one of a few dozen shapes; each is prepared once. */
  private cachedStatement(sql: string): Database.Statement<(string | number)[], { envelope: string }> {
    let statement = this.queryStatements.get(sql);
    if (!statement) {
      statement = this.reader.prepare<(string | number)[], { envelope: string }>(sql);
      if (this.queryStatements.size >= 256) this.queryStatements.clear();
      this.queryStatements.set(sql, statement);
    }
    return statement;
  }

  async purgeExpired(now: Date, olderThan?: Date, keepAfter: (FeedPosition | null)[] = []): Promise<number> {
    const upTo = Math.min(Number.MAX_SAFE_INTEGER, ...keepAfter.map((p) => (p === null ? 0 : Number(p))));
    return (await this.request({ op: 'purge', now: now.getTime(), olderThan: olderThan?.getTime() ?? null, upTo })) ?? 0;
  }

  async readFeed(after: FeedPosition | null, limit: number): Promise<FeedBatch> {
    const rows = this.statements.feed.all(after === null ? 0 : Number(after), limit);
    const last = rows[rows.length - 1];
    return { messages: rows.map((row) => JSON.parse(row.envelope) as Message), position: last ? String(last.seq) : after };
  }

  async feedLag(after: FeedPosition | null): Promise<{ count: number; oldestTs: string | null }> {
    const row = this.statements.lag.get(after === null ? 0 : Number(after))!;
    return { count: row.count, oldestTs: row.oldest === null ? null : new Date(row.oldest).toISOString() };
  }

  async getCheckpoint(consumer: string): Promise<FeedPosition | null> {
    const row = this.statements.checkpoint.get(consumer);
    return row ? String(row.position) : null;
  }

  async setCheckpoint(consumer: string, position: FeedPosition): Promise<void> {
    await this.request({ op: 'checkpoint', consumer, position: Number(position) });
  }
}
