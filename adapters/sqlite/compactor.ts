import Database from 'better-sqlite3';
import { ChunkWriter } from './chunk-writer.js';
import type { CompactorOptions } from './compactor-protocol.js';
import { JournalReader } from './journal-reader.js';
import { MESSAGE_SCHEMA, configureDurable } from './schema.js';

/** A compaction takes whole frames until it holds at least this many messages. */
const MAX_COMPACTION = 100_000;
/** Chunks purged per transaction: compaction gets its turn between slices. */
const PURGE_SLICE = 256;

/**
 * The background half of the store (on its own thread): moves durable messages from the journal
 * into chunks, one transaction per compaction that also records the new watermark, so a crash
 * at any point leaves every message either still in the journal or in chunks, never both
 * counted (recovery skips what the watermark covers) and never neither (segments are deleted
 * only after the transaction that covers them committed).
 */
export class Compactor {
  private readonly db: Database.Database;
  private readonly writer: ChunkWriter;
  private reader!: JournalReader;
  /** Every message up to here is in chunks. */
  compacted: number;

  constructor(private readonly options: CompactorOptions) {
    this.db = new Database(options.file);
    configureDurable(this.db);
    // A compaction writes megabytes: checkpoint the WAL less often than every 4 MiB, and keep
    // the index pages it touches in memory.
    this.db.pragma('wal_autocheckpoint = 8192');
    this.db.pragma('cache_size = -65536');
    this.db.exec(MESSAGE_SCHEMA);
    this.writer = new ChunkWriter(this.db);
    this.compacted = this.writer.compacted();
  }

  /**
   * Compacts whatever the journal holds beyond the watermark (what was acknowledged before a
   * crash or stop), deletes the old segments, and returns the next sequence number to assign
   * and how many messages it recovered.
   */
  recover(): { nextSeq: number; recovered: number } {
    const segments = JournalReader.segments(this.options.journal);
    let nextSeq = this.compacted + 1;
    let recovered = 0;
    if (segments.length > 0) {
      const reader = new JournalReader(this.options.journal, segments[0]!, true);
      for (let located; (located = reader.read(Infinity, MAX_COMPACTION)).length > 0; ) {
        const fresh = located.filter((l) => l.record.seq > this.compacted);
        if (fresh.length > 0) this.writer.compact(fresh, fresh[0]!.record.seq, fresh[fresh.length - 1]!.record.seq);
        this.compacted = Math.max(this.compacted, reader.nextSeq - 1);
        recovered += fresh.length;
      }
      nextSeq = Math.max(nextSeq, reader.nextSeq);
      reader.releaseAll();
    }
    this.reader = new JournalReader(this.options.journal, nextSeq, false);
    return { nextSeq, recovered };
  }

  /** Compacts durable messages up to `through` (at most one compaction's worth); returns whether it did. */
  compactOnce(through: number): boolean {
    const located = this.reader.read(through, MAX_COMPACTION);
    if (located.length === 0) return false;
    const last = located[located.length - 1]!.record.seq;
    this.writer.compact(located, located[0]!.record.seq, last);
    this.compacted = last;
    this.reader.release(last);
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
    this.reader?.close();
    if (this.db.open) this.db.close();
  }
}
