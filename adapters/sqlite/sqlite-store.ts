import Database from 'better-sqlite3';
import { resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import { encodeCursor } from '../../core/cursor.js';
import { NitrogenError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { encodeMessage, type Message } from '../../core/message.js';
import type { Page } from '../../core/ports/lifecycle.js';
import type { FeedBatch, FeedPosition, MessageQuery, Store } from '../../core/ports/store.js';
import { ChunkReader } from './chunk-reader.js';
import type { CompactorEvent, CompactorOptions, CompactorRequest } from './compactor-protocol.js';
import { Journal } from './journal.js';
import { KeyIndex, keyHash } from './key-index.js';
import { hitOrder, queryBounds } from './matching.js';
import { encodeFrame, type Entry, type RecordHit } from './record.js';
import { MESSAGE_SCHEMA, configureDurable } from './schema.js';
import { Tail } from './tail.js';

export interface SqliteStoreOptions {
  /** Database file: an absolute path, or one relative to the data directory. The journal is a directory beside it. */
  file: string;
  /** Compact as soon as this many acknowledged messages wait in the journal (default 50,000). */
  compactMessages?: number;
  /** ...or once the first of them has waited this long (default 2,000 ms). */
  compactDelayMs?: number;
  /** Appends wait while this many messages are not compacted yet: the bound on the tail's memory (default 200,000). */
  maxTailMessages?: number;
  /** A journal segment is closed for a new one beyond this size (default 64 MiB). */
  segmentBytes?: number;
}

export const SQLITE_STORE_DEFAULTS = { compactMessages: 50_000, compactDelayMs: 2_000, maxTailMessages: 200_000, segmentBytes: 64 * 1024 * 1024 };

type Request = CompactorRequest extends infer R ? (R extends { id: number } ? Omit<R, 'id'> : never) : never;
type Waiter = { resolve: (result: number | undefined) => void; reject: (err: Error) => void };

const MAX_TIME = 8.64e15;

/**
 * The embedded default Store. An append is durable when its frame is in the journal and
 * fdatasynced; a compactor thread later moves messages into chunks in SQLite (WAL,
 * synchronous=FULL), indexed per chunk. Until then the tail in memory answers for them, so
 * reads see every acknowledged message. Sequence numbers (commit order) are feed positions.
 * The design, and what is durable when: docs/adapters/sqlite.md.
 */
export class SqliteStore implements Store {
  private readonly file: string;
  private readonly journalDir: string;
  private readonly options: typeof SQLITE_STORE_DEFAULTS;
  private reader?: Database.Database;
  private chunks!: ChunkReader;
  private compactor?: Worker;
  private compactorExit?: Promise<unknown>;
  private journal?: Journal;
  private readonly tail = new Tail();
  /** Keys of the append being admitted, for duplicates within it. */
  private readonly batchKeys = new KeyIndex();
  /** One-entry cache of Date.parse(ts): a group commit's messages mostly share a ts string. */
  private lastTs = { text: '', ms: 0 };
  private lastSeq = 0;
  /** The last frame queued: when it is durable, so is everything appended before. */
  private lastFrame: Promise<void> = Promise.resolve();
  private readonly waiters = new Map<number, Waiter>();
  private nextRequest = 1;
  private failure?: Error;

  constructor(dataDir: string, options: SqliteStoreOptions, private readonly logger?: Logger) {
    this.file = resolve(dataDir, options.file);
    this.journalDir = this.file.replace(/\.db$/, '') + '.journal';
    this.options = { ...SQLITE_STORE_DEFAULTS, ...withoutUndefined(options) };
  }

  async start(): Promise<void> {
    // The schema first, so that the read-only connection can prepare its statements at once.
    const setup = new Database(this.file);
    configureDurable(setup);
    setup.exec(MESSAGE_SCHEMA);
    setup.close();
    const data: CompactorOptions = { file: this.file, journal: this.journalDir, compactMessages: this.options.compactMessages, compactDelayMs: this.options.compactDelayMs };
    const compactor = new Worker(new URL('./compactor-worker.js', import.meta.url), { workerData: data });
    this.compactor = compactor;
    this.compactorExit = new Promise((resolve) => compactor.once('exit', resolve));
    const ready = new Promise<{ nextSeq: number; recovered: number }>((resolve, reject) => {
      compactor.on('message', (event: CompactorEvent) => {
        if (event.op === 'ready') resolve(event);
        else if (event.op === 'failed' && event.fatal) reject(new NitrogenError('NITROGEN_ERR_STORE', `SQLite store could not start: ${event.error}`));
        else this.onEvent(event);
      });
      compactor.on('error', (err) => reject(err));
    });
    compactor.on('error', (err) => this.fail(err));
    compactor.on('exit', (code) => {
      if (this.compactor) this.fail(new Error(`SQLite compactor thread exited with code ${code}`));
    });
    const { nextSeq, recovered } = await ready;
    if (recovered > 0) this.logger?.info({ recovered }, 'compacted messages the journal held from before the restart');
    this.lastSeq = nextSeq - 1;
    this.reader = new Database(this.file, { readonly: true });
    this.chunks = new ChunkReader(this.reader);
    this.journal = new Journal(this.journalDir, this.options.segmentBytes, nextSeq, (seq) => {
      this.tail.durableThrough(seq);
      this.post({ op: 'durable', seq });
    });
    await this.journal.open();
  }

  async stop(): Promise<void> {
    await this.journal?.close().catch(() => {});
    this.journal = undefined;
    if (this.compactor) {
      // The compactor empties the journal before it closes: the next start has nothing to recover.
      await this.request({ op: 'close' }).catch((err) => this.logger?.warn({ err }, 'SQLite compactor failed to close cleanly'));
      this.compactor = undefined;
      await this.compactorExit;
    }
    this.fail(new Error('store stopped'));
    if (this.reader?.open) this.reader.close();
  }

  private onEvent(event: CompactorEvent): void {
    switch (event.op) {
      case 'compacted':
        this.tail.compactedThrough(event.seq);
        break;
      case 'failed':
        this.logger?.error({ err: event.error }, 'SQLite compaction failed; retrying (acknowledged messages are safe in the journal)');
        break;
      case 'reply': {
        const waiter = this.waiters.get(event.id);
        this.waiters.delete(event.id);
        if (event.ok) waiter?.resolve(event.result);
        else waiter?.reject(new NitrogenError('NITROGEN_ERR_STORE', `SQLite write failed: ${event.error}`, { cause: Object.assign(new Error(event.error), { code: event.code }) }));
        break;
      }
    }
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const waiter of this.waiters.values()) waiter.reject(new NitrogenError('NITROGEN_ERR_STORE', err.message, { cause: err }));
    this.waiters.clear();
  }

  private post(message: CompactorRequest): void {
    this.compactor?.postMessage(message);
  }

  private request(request: Request): Promise<number | undefined> {
    if (!this.compactor || this.failure) return Promise.reject(new NitrogenError('NITROGEN_ERR_UNAVAILABLE', 'store is not running', { cause: this.failure }));
    const id = this.nextRequest++;
    return new Promise((resolve, reject) => {
      this.waiters.set(id, { resolve, reject });
      this.post({ ...request, id } as CompactorRequest);
    });
  }

  async append(batch: Message[]): Promise<void> {
    if (!this.journal || this.failure) throw new NitrogenError('NITROGEN_ERR_UNAVAILABLE', 'store is not running', { cause: this.failure });
    // Bounded memory: past the bound, wait for compaction (GroupCommit's queue then fills, and transports slow down).
    if (this.tail.size >= this.options.maxTailMessages) await this.tail.room(this.options.maxTailMessages);
    const admitted = this.admit(batch);
    if (admitted) this.lastFrame = this.journal.append(admitted.frame, admitted.firstSeq, admitted.lastSeq);
    // Also when every message was a duplicate: its first copy may still be on its way to the disk.
    await this.lastFrame.catch((err: unknown) => {
      throw new NitrogenError('NITROGEN_ERR_STORE', 'SQLite store could not write its journal', { cause: err });
    });
  }

  /**
   * The idempotency check, sequence numbers and the journal frame, in one synchronous step: a
   * message is new when its (from, id) is neither in the tail (durable or on its way) nor in
   * chunks. Compaction removes a message from the tail only after it is readable in chunks, so
   * nothing slips between the two checks.
   */
  private admit(batch: Message[]): { frame: Buffer; firstSeq: number; lastSeq: number } | undefined {
    const fresh: Message[] = [];
    const hashes: number[] = [];
    const keys = this.batchKeys;
    keys.clear();
    for (const m of batch) {
      const hash = keyHash(m.from, m.id);
      if (this.tail.has(hash, m.from, m.id)) continue;
      if (keys.find(hash, (i) => fresh[i]!.from === m.from && fresh[i]!.id === m.id) >= 0) continue;
      keys.add(hash, fresh.length);
      fresh.push(m);
      hashes.push(hash);
    }
    const stored = this.chunks.existing(fresh);
    const committed = Date.now();
    const entries: Entry[] = [];
    const kept: number[] = [];
    for (let i = 0; i < fresh.length; i++) {
      const message = fresh[i]!;
      if (stored.size > 0 && stored.has(`${message.from}\u0000${message.id}`)) continue;
      entries.push({ seq: this.lastSeq + entries.length + 1, ts: this.parseTs(message.ts), committed, message, json: encodeMessage(message) });
      kept.push(hashes[i]!);
    }
    if (entries.length === 0) return undefined;
    let encoded;
    try {
      encoded = encodeFrame(entries);
    } catch (err) {
      throw new NitrogenError('NITROGEN_ERR_STORE', `SQLite store could not encode messages: ${(err as Error).message}`, { cause: err });
    }
    const firstSeq = this.lastSeq + 1;
    this.lastSeq += entries.length;
    this.tail.add({ frame: encoded.frame, firstSeq, lastSeq: this.lastSeq, starts: encoded.starts, hashes: Uint32Array.from(kept) });
    return { frame: encoded.frame, firstSeq, lastSeq: this.lastSeq };
  }

  private parseTs(text: string): number {
    if (text !== this.lastTs.text) this.lastTs = { text, ms: Date.parse(text) };
    return this.lastTs.ms;
  }

  /** Runs `read` in one read transaction with the watermark it saw: chunks hold up to it, the tail after it. */
  private snapshot<T>(read: (compacted: number) => T): T {
    if (!this.reader) throw new NitrogenError('NITROGEN_ERR_UNAVAILABLE', 'store is not running');
    return this.reader.transaction(() => read(this.chunks.compacted()))();
  }

  async get(id: string): Promise<Message | null> {
    const hit = this.snapshot((compacted) => this.chunks.get(id) ?? this.tail.get(id, compacted));
    return hit ? hit.read() : null;
  }

  async query(query: MessageQuery): Promise<Page<Message>> {
    const bounds = queryBounds(query);
    const want = query.limit + 1;
    const hits = this.snapshot((compacted) => [...this.chunks.query(query, bounds, want), ...this.tail.query(query, bounds, compacted, want)]);
    hits.sort(hitOrder(bounds.desc));
    const items = hits.slice(0, query.limit).map((hit) => hit.read());
    const last = items[items.length - 1];
    return { items, next: hits.length > query.limit && last ? encodeCursor([last.ts, last.id]) : null };
  }

  async purgeExpired(now: Date, olderThan?: Date, keepAfter: (FeedPosition | null)[] = []): Promise<number> {
    const upTo = Math.min(Number.MAX_SAFE_INTEGER, ...keepAfter.map((p) => (p === null ? 0 : Number(p))));
    try {
      return (await this.request({ op: 'purge', now: now.getTime(), olderThan: olderThan?.getTime() ?? -MAX_TIME, upTo })) ?? 0;
    } finally {
      // Decoded compactions may hold purged messages.
      this.chunks.invalidate();
    }
  }

  async readFeed(after: FeedPosition | null, limit: number): Promise<FeedBatch> {
    const from = after === null ? 0 : Number(after);
    const hits = this.snapshot((compacted) => {
      const stored: RecordHit[] = from < compacted ? this.chunks.feed(from, limit) : [];
      return stored.length < limit ? [...stored, ...this.tail.feed(Math.max(from, compacted), limit - stored.length)] : stored;
    });
    const last = hits[hits.length - 1];
    return { messages: hits.map((hit) => hit.read()), position: last ? String(last.seq) : after };
  }

  async feedLag(after: FeedPosition | null): Promise<{ count: number; oldestTs: string | null }> {
    const from = after === null ? 0 : Number(after);
    return this.snapshot((compacted) => {
      const count = (from < compacted ? this.chunks.countAfter(from) : 0) + this.tail.countAfter(Math.max(from, compacted));
      const oldest = (from < compacted ? this.chunks.feed(from, 1)[0] : undefined) ?? this.tail.feed(Math.max(from, compacted), 1)[0];
      return { count, oldestTs: oldest ? new Date(oldest.record.committed).toISOString() : null };
    });
  }

  async getCheckpoint(consumer: string): Promise<FeedPosition | null> {
    const position = this.snapshot(() => this.chunks.checkpoint(consumer));
    return position === undefined ? null : String(position);
  }

  async setCheckpoint(consumer: string, position: FeedPosition): Promise<void> {
    await this.request({ op: 'checkpoint', consumer, position: Number(position) });
  }
}

function withoutUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
