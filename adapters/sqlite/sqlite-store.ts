import Database from 'better-sqlite3';
import { resolve } from 'node:path';
import { encodeCursor } from '../../core/cursor.js';
import { NitrogenError } from '../../core/errors.js';
import type { ComponentHealth } from '../../core/health.js';
import type { Logger } from '../../core/logger.js';
import type { Message } from '../../core/message.js';
import type { Page } from '../../core/ports/lifecycle.js';
import type { FeedBatch, FeedPosition, FeedRecord, FeedRecordBatch, MessageQuery, Store } from '../../core/ports/store.js';
import { ChunkReader } from './chunk-reader.js';
import { CompactorClient } from './compactor-client.js';
import { Journal } from './journal.js';
import { KeyIndex, keyHash, type KeySource } from './key-index.js';
import { hitOrder, queryBounds } from './matching.js';
import { claimStore } from './owner-lock.js';
import { FRAME_HEADER, encodeFrame, recordBound, type MessageRecord } from './record.js';
import { FrameRing } from './ring.js';
import { MESSAGE_SCHEMA, configureDurable } from './schema.js';
import { Tail, type TailFrame } from './tail.js';

export interface SqliteStoreOptions {
  /** Database file: an absolute path, or one relative to the data directory. The journal is a directory beside it. */
  file: string;
  /** Memory for acknowledged messages not yet compacted; appends wait while it is full (default 128 MiB). */
  tailBytes?: number;
  /** Compact as soon as this many bytes of acknowledged messages wait (default 16 MiB)... */
  compactBytes?: number;
  /** ...or once the first of them has waited this long (default 2,000 ms). */
  compactDelayMs?: number;
  /** A journal segment is closed for a new one beyond this size (default 64 MiB). */
  segmentBytes?: number;
}

export const SQLITE_STORE_DEFAULTS = { tailBytes: 128 * 2 ** 20, compactBytes: 16 * 2 ** 20, compactDelayMs: 2_000, segmentBytes: 64 * 2 ** 20 };

const MAX_TIME = 8.64e15;

/**
 * The embedded default Store. An append resolves once its frame is on disk in the journal; a
 * compactor thread later moves messages into chunks in SQLite (WAL, synchronous=FULL), indexed
 * per chunk. Until then the tail answers for them from memory, so reads see every
 * acknowledged message. Sequence numbers (commit order) are feed positions.
 * The design, and what is durable when: docs/adapters/sqlite.md.
 */
export class SqliteStore implements Store {
  private readonly file: string;
  private readonly journalDir: string;
  private readonly options: typeof SQLITE_STORE_DEFAULTS;
  private reader?: Database.Database;
  private chunks!: ChunkReader;
  private compactor?: CompactorClient;
  private journal?: Journal<TailFrame>;
  private ring!: FrameRing;
  private readonly tail = new Tail();
  /** Keys of the append being admitted, for duplicates within it. */
  private readonly batchKeys = new KeyIndex();
  private lastSeq = 0;
  /** The last frame queued: when it is durable, so is everything appended before. */
  private lastFrame: Promise<void> = Promise.resolve();
  private releaseClaim?: () => void;

  constructor(
    dataDir: string,
    options: SqliteStoreOptions,
    private readonly logger?: Logger,
  ) {
    this.file = resolve(dataDir, options.file);
    this.journalDir = this.file.replace(/\.db$/, '') + '.journal';
    this.options = { ...SQLITE_STORE_DEFAULTS, ...withoutUndefined(options) };
  }

  async start(): Promise<void> {
    this.releaseClaim = claimStore(`${this.journalDir}.owner`);
    try {
      await this.open();
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  private async open(): Promise<void> {
    // The schema first, so that the read-only connection can prepare its statements at once.
    const setup = new Database(this.file);
    configureDurable(setup);
    setup.exec(MESSAGE_SCHEMA);
    setup.close();
    this.ring = new FrameRing(this.options.tailBytes);
    const { client, nextSeq, recovered, migrated } = await CompactorClient.start(
      { file: this.file, journal: this.journalDir, ring: this.ring.shared, compactBytes: this.options.compactBytes, compactDelayMs: this.options.compactDelayMs },
      {
        compacted: (seq) => this.compacted(seq),
        failed: (error, fatal) => {
          if (!fatal) return this.logger?.error({ err: error }, 'SQLite compaction failed; retrying (acknowledged messages are safe in the journal)');
          this.logger?.error({ err: error }, 'SQLite compactor thread stopped; appends fail until a restart recovers the journal');
          this.ring.free(0); // wakes appends waiting for room, to fail
        },
      },
    );
    this.compactor = client;
    if (recovered > 0) this.logger?.info({ recovered }, 'compacted the messages the journal held from before the restart');
    if (migrated > 0) this.logger?.info({ migrated }, 'moved the messages of a database written before chunks into chunks');
    this.lastSeq = nextSeq - 1;
    this.reader = new Database(this.file, { readonly: true });
    this.chunks = new ChunkReader(this.reader);
    this.journal = new Journal<TailFrame>(this.journalDir, this.options.segmentBytes, nextSeq, (frames) => this.durable(frames));
    await this.journal.open();
  }

  async stop(): Promise<void> {
    const journal = this.journal;
    this.journal = undefined;
    await journal?.close().catch((err) => this.logger?.warn({ err }, 'SQLite journal failed to close'));
    // The compactor compacts what the journal holds before it exits: the next start has nothing to redo.
    await this.compactor?.close();
    this.compactor = undefined;
    if (this.reader?.open) this.reader.close();
    this.releaseClaim?.();
    this.releaseClaim = undefined;
  }

  /** Frames are durable: readers may see them, and the compactor may take them. */
  private durable(frames: TailFrame[]): void {
    this.tail.durableThrough(frames[frames.length - 1]!.lastSeq);
    this.compactor?.post({ op: 'durable', frames: frames.map((f) => [this.ring.offset(f.position), f.frame.length, f.firstSeq, f.lastSeq]) });
  }

  /** Messages up to `seq` are in chunks: their frames leave the tail, the ring and the journal. */
  private compacted(seq: number): void {
    const last = this.tail.compactedThrough(seq);
    if (last) this.ring.free(last.position + last.frame.length);
    this.journal?.release(seq);
  }

  /** For GET /ready (core/health.ts): down once the compactor thread is gone, when every append would fail. */
  health(): ComponentHealth {
    if (!this.journal || !this.compactor) return { status: 'down', reason: 'the store is not running' };
    const failed = this.compactor.failed;
    return failed ? { status: 'down', reason: `SQLite store is out of order: ${failed.message}` } : { status: 'ok' };
  }

  private running(): { journal: Journal<TailFrame>; compactor: CompactorClient } {
    if (!this.journal || !this.compactor) throw new NitrogenError('NITROGEN_ERR_UNAVAILABLE', 'store is not running');
    const failed = this.compactor.failed;
    if (failed) throw new NitrogenError('NITROGEN_ERR_STORE', `SQLite store is out of order: ${failed.message}`, { cause: failed });
    return { journal: this.journal, compactor: this.compactor };
  }

  async append(batch: Message[]): Promise<void> {
    // Bounded memory: when the ring is full, wait for compaction (GroupCommit's queue then fills, and transports slow down).
    while (!this.admit(this.fresh(batch), this.running().journal)) await this.ring.room();
    // Also when every message was a duplicate: its first copy may still be on its way to the disk.
    await this.lastFrame.catch((err: unknown) => {
      throw new NitrogenError('NITROGEN_ERR_STORE', 'SQLite store could not write its journal', { cause: err });
    });
  }

  /**
   * The idempotency check: the messages whose (from, id) is neither in the tail (durable or on
   * its way) nor in chunks, nor earlier in the batch, with their key hashes. Compaction removes
   * a message from the tail only after it is readable in chunks, so nothing slips between the
   * two checks; `admit` must follow in the same synchronous step.
   */
  private fresh(batch: Message[]): { messages: Message[]; hashes: number[] } {
    const candidates: Message[] = [];
    const candidateHashes: number[] = [];
    const keys = this.batchKeys;
    keys.clear();
    const earlier: KeySource = { hasKey: (i, from, id) => candidates[i]!.from === from && candidates[i]!.id === id };
    for (const m of batch) {
      const hash = keyHash(m.from, m.id);
      if (this.tail.has(hash, m.from, m.id) || keys.find(hash, m.from, m.id, earlier) >= 0) continue;
      keys.add(hash, candidates.length);
      candidates.push(m);
      candidateHashes.push(hash);
    }
    const stored = this.chunks.existing(candidates);
    if (stored.size === 0) return { messages: candidates, hashes: candidateHashes };
    const messages: Message[] = [];
    const hashes: number[] = [];
    for (let i = 0; i < candidates.length; i++) {
      if (stored.has(`${candidates[i]!.from}\u0000${candidates[i]!.id}`)) continue;
      messages.push(candidates[i]!);
      hashes.push(candidateHashes[i]!);
    }
    return { messages, hashes };
  }

  /**
   * Numbers the messages, encodes them as one frame in the ring, and queues it for the
   * journal (in two frames or more when one would be too large for the ring). Returns false,
   * having changed nothing, when the ring has no room now.
   */
  private admit({ messages, hashes }: { messages: Message[]; hashes: number[] }, journal: Journal<TailFrame>): boolean {
    if (messages.length === 0) return true;
    let bound = FRAME_HEADER;
    for (const m of messages) bound += recordBound(m);
    if (bound > this.ring.maxFrame) {
      if (messages.length === 1) throw new NitrogenError('NITROGEN_ERR_STORE', `a message of ${bound} bytes exceeds what the SQLite store's tail takes (tailBytes / 4)`);
      // When the second half finds no room, append() retries the batch, where the first half is now a duplicate.
      const half = messages.length >> 1;
      return this.admit({ messages: messages.slice(0, half), hashes: hashes.slice(0, half) }, journal) && this.admit({ messages: messages.slice(half), hashes: hashes.slice(half) }, journal);
    }
    const position = this.ring.reserve(bound);
    if (position < 0) return false;
    const firstSeq = this.lastSeq + 1;
    let encoded;
    try {
      encoded = encodeFrame(messages, firstSeq, Date.now(), this.ring.view(position, bound));
    } catch (err) {
      throw new NitrogenError('NITROGEN_ERR_STORE', `SQLite store could not encode messages: ${(err as Error).message}`, { cause: err });
    }
    this.ring.commit(position, encoded.length);
    this.lastSeq += messages.length;
    const frame: TailFrame = { frame: this.ring.view(position, encoded.length), position, firstSeq, lastSeq: this.lastSeq, starts: encoded.starts, hashes: Uint32Array.from(hashes) };
    this.tail.add(frame);
    this.lastFrame = journal.append(frame);
    return true;
  }

  /** Runs `read` in one read transaction with the watermark it saw: chunks hold up to it, the tail after it. */
  private snapshot<T>(read: (compacted: number) => T): T {
    if (!this.reader?.open) throw new NitrogenError('NITROGEN_ERR_UNAVAILABLE', 'store is not running');
    return this.reader.transaction(() => read(this.chunks.compacted()))();
  }

  async get(id: string, from?: string): Promise<Message | null> {
    return this.snapshot((compacted) => (this.chunks.get(id, from) ?? this.tail.get(id, compacted, from))?.read() ?? null);
  }

  async query(query: MessageQuery): Promise<Page<Message>> {
    const bounds = queryBounds(query);
    const want = query.limit + 1;
    const hits = this.snapshot((compacted) => {
      const found = [...this.chunks.query(query, bounds, want), ...this.tail.query(query, bounds, compacted, want)].sort(hitOrder(bounds.desc));
      return { more: found.length > query.limit, items: found.slice(0, query.limit).map((hit) => hit.read()) };
    });
    const last = hits.items[hits.items.length - 1];
    return { items: hits.items, next: hits.more && last ? encodeCursor([last.ts, last.id, last.from]) : null };
  }

  async purgeExpired(now: Date, olderThan?: Date, keepAfter: (FeedPosition | null)[] = []): Promise<number> {
    const upTo = Math.min(Number.MAX_SAFE_INTEGER, ...keepAfter.map((p) => (p === null ? 0 : Number(p))));
    try {
      return (await this.running().compactor.request({ op: 'purge', now: now.getTime(), olderThan: olderThan?.getTime() ?? -MAX_TIME, upTo })) ?? 0;
    } finally {
      // Decoded compactions may hold purged messages.
      this.chunks.invalidate();
    }
  }

  async readFeed(after: FeedPosition | null, limit: number): Promise<FeedBatch> {
    return this.feed(after, limit, (hits) => hits.map((hit) => hit.read()));
  }

  /** The feed without parsing JSON: the records' envelope bytes, copied out of the ring and chunks in one buffer. */
  async readFeedRecords(after: FeedPosition | null, limit: number): Promise<FeedRecordBatch> {
    const { messages, position } = await this.feed(after, limit, (hits) => {
      let bytes = 0;
      for (const hit of hits) bytes += hit.end - hit.json;
      const copy = Buffer.allocUnsafe(bytes);
      let at = 0;
      return hits.map((hit): FeedRecord => {
        const n = hit.buf.copy(copy, at, hit.json, hit.end);
        const record = { id: hit.id, from: hit.from, type: hit.type, to: hit.to, ts: hit.ts, expires: hit.expires, json: copy.subarray(at, at + n) };
        at += n;
        return record;
      });
    });
    return { records: messages, position };
  }

  /** The hits after `after`, read by `read` inside the snapshot (tail hits point into the ring). */
  private feed<T>(after: FeedPosition | null, limit: number, read: (hits: MessageRecord[]) => T[]): Promise<{ messages: T[]; position: FeedPosition | null }> {
    const from = after === null ? 0 : Number(after);
    return Promise.resolve(
      this.snapshot((compacted) => {
        const stored: MessageRecord[] = from < compacted ? this.chunks.feed(from, limit) : [];
        const hits = stored.length < limit ? [...stored, ...this.tail.feed(Math.max(from, compacted), limit - stored.length)] : stored;
        const last = hits[hits.length - 1];
        return { messages: read(hits), position: last ? String(last.seq) : after };
      }),
    );
  }

  async feedLag(after: FeedPosition | null): Promise<{ count: number; oldestTs: string | null }> {
    const from = after === null ? 0 : Number(after);
    return this.snapshot((compacted) => {
      const count = (from < compacted ? this.chunks.countAfter(from) : 0) + this.tail.countAfter(Math.max(from, compacted));
      const oldest = (from < compacted ? this.chunks.feed(from, 1)[0] : undefined) ?? this.tail.feed(Math.max(from, compacted), 1)[0];
      return { count, oldestTs: oldest ? new Date(oldest.committed).toISOString() : null };
    });
  }

  /**
   * Compacts every acknowledged message into chunks now, rather than when enough have gathered;
   * resolves when readers find them there. For tests and tools: the store compacts by itself.
   */
  async compact(): Promise<void> {
    await this.running().compactor.request({ op: 'compact' });
  }

  async getCheckpoint(consumer: string): Promise<FeedPosition | null> {
    const position = this.snapshot(() => this.chunks.checkpoint(consumer));
    return position === undefined ? null : String(position);
  }

  async setCheckpoint(consumer: string, position: FeedPosition): Promise<void> {
    await this.running().compactor.request({ op: 'checkpoint', consumer, position: Number(position) });
  }
}

function withoutUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
