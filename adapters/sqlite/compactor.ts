import Database from 'better-sqlite3';
import { ChunkWriter } from './chunk-writer.js';
import type { CompactorOptions } from './compactor-protocol.js';
import { JournalReader } from './journal-reader.js';
import { migrateMessagesTable } from './migrate.js';
import { FRAME_HEADER } from './record.js';
import { MESSAGE_SCHEMA, configureDurable } from './schema.js';

/** A compaction takes whole frames until it holds at least this many messages. */
const MAX_COMPACTION = 100_000;
/** Chunks purged per transaction: compaction gets its turn between slices. */
const PURGE_SLICE = 256;

/**
 * The background half of the store (on its own thread): moves durable messages into chunks,
 * reading their frames from the ring the store shares with it, one transaction per compaction
 * that also records the new watermark. A crash at any point leaves every message either still
 * in the journal or in chunks, never both counted (recovery skips what the watermark covers) and
 * never neither (the store deletes a journal segment only after the compaction covering it).
 */
export class Compactor {
  private readonly db: Database.Database;
  private readonly writer: ChunkWriter;
  private readonly ring: Buffer;
  /** Durable frames waiting in the ring, oldest first: [offset, length, first seq, last seq]. */
  private readonly frames: Array<[number, number, number, number]> = [];
  /** Bytes of the frames waiting. */
  waitingBytes = 0;
  /** Every message up to here is in chunks. */
  compacted: number;
  /** Messages moved at start from a database written before chunks (migrate.ts). */
  readonly migrated: number;

  constructor(private readonly options: CompactorOptions) {
    this.db = new Database(options.file);
    configureDurable(this.db);
    // Keep the index pages compactions touch (one per sender in chunks_sender) in memory.
    this.db.pragma('cache_size = -65536');
    this.db.exec(MESSAGE_SCHEMA);
    this.writer = new ChunkWriter(this.db);
    this.migrated = migrateMessagesTable(this.db, this.writer);
    this.compacted = this.writer.compacted();
    this.ring = Buffer.from(options.ring);
  }

  /**
   * Compacts whatever the journal on disk holds beyond the watermark (what was acknowledged
   * before a crash or stop), deletes the segments, and returns the next sequence number to
   * assign and how many messages it recovered.
   */
  recover(): { nextSeq: number; recovered: number } {
    const reader = new JournalReader(this.options.journal);
    let recovered = 0;
    for (let batch; (batch = reader.read(MAX_COMPACTION, this.compacted));) {
      this.writer.compact(batch, batch.firstSeq, batch.lastSeq);
      this.compacted = batch.lastSeq;
      recovered += batch.lastSeq - batch.firstSeq + 1;
    }
    reader.removeAll();
    return { nextSeq: Math.max(this.compacted + 1, reader.endSeq), recovered };
  }

  /** Frames that became durable, in order, where they are in the ring. */
  durable(frames: Array<[number, number, number, number]>): void {
    for (const frame of frames) {
      this.frames.push(frame);
      this.waitingBytes += frame[1];
    }
  }

  /** Compacts the oldest waiting frames (at most one compaction's worth); returns whether there were any. */
  compactOnce(): boolean {
    if (this.frames.length === 0) return false;
    const spans: number[] = [];
    let taken = 0;
    // The ring's frames were written by this process and are read straight from memory: no CRC to check.
    while (taken < this.frames.length && this.frames[taken]![2] - this.frames[0]![2] < MAX_COMPACTION) {
      const [offset, length] = this.frames[taken++]!;
      spans.push(offset + FRAME_HEADER, offset + length);
    }
    const last = this.frames[taken - 1]![3];
    this.writer.compact({ buf: this.ring, spans }, this.frames[0]![2], last);
    for (const [, length] of this.frames.splice(0, taken)) this.waitingBytes -= length;
    this.compacted = last;
    return true;
  }

  setCheckpoint(consumer: string, position: number): void {
    this.writer.setCheckpoint(consumer, position);
  }

  /** Purges in slices, letting `between` run (compactions) after each; resolves with the count. */
  async purge(now: number, olderThan: number, upTo: number, between: () => void): Promise<number> {
    const candidates = this.writer.purgeCandidates(now, olderThan, upTo);
    let purged = 0;
    for (let i = 0; i < candidates.length; i += PURGE_SLICE) {
      purged += this.writer.purge(candidates.slice(i, i + PURGE_SLICE), now, olderThan, upTo);
      await new Promise((resolve) => setImmediate(resolve));
      between();
    }
    return purged;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
