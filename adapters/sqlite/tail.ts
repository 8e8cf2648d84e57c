import type { MessageQuery } from '../../core/ports/store.js';
import { KeyIndex, type KeySource } from './key-index.js';
import { hitOrder, recordMatches, type Bounds } from './matching.js';
import type { JournalFrame } from './journal.js';
import { readRecord, recordFromAny, recordHasId, recordTs, type MessageRecord } from './record.js';

/** One append's journal frame (in the ring), kept until compaction has moved it into chunks. */
export interface TailFrame extends JournalFrame {
  /** Where it starts in the ring (a virtual position, ring.ts). */
  position: number;
  /** Where each record starts in `frame`. */
  starts: Uint32Array;
  /** The key hash (key-index.ts) of each record's (from, id). */
  hashes: Uint32Array;
}

/**
 * The messages of the journal that compaction has not yet moved into chunks, on the main
 * thread: read-your-writes for get, query and the feed without waiting for compaction. The tail
 * keeps the frames the journal wrote (in the ring, off the JavaScript heap) and an index of
 * their keys, not the appended Message objects, which therefore die young. A message is visible
 * once its frame is durable, so readers (and sinks) never see one that a crash could take back;
 * it leaves once compaction has committed it, and readers then find it in chunks.
 *
 * Hits point into the ring: read them before anything else runs (the space is reused).
 */
export class Tail implements KeySource {
  private frames: TailFrame[] = [];
  private head = 0;
  private readonly keys = new KeyIndex(1 << 16);
  private count = 0;
  private visible = 0;

  /** Messages in the tail, durable or on their way. */
  get size(): number {
    return this.count;
  }

  /** Whether a message with this key is in the tail, durable or on its way. */
  has(hash: number, from: string, id: string): boolean {
    return this.keys.find(hash, from, id, this) >= 0;
  }

  hasKey(seq: number, from: string, id: string): boolean {
    const record = this.recordAt(seq);
    return record.from === from && record.id === id;
  }

  add(frame: TailFrame): void {
    this.frames.push(frame);
    for (let i = 0; i < frame.hashes.length; i++) this.keys.add(frame.hashes[i]!, frame.firstSeq + i);
    this.count += frame.hashes.length;
  }

  /** Messages up to `seq` are durable: readers may see them. */
  durableThrough(seq: number): void {
    this.visible = seq;
  }

  /** Messages up to `seq` are in chunks: drops the frames holding only those, and returns the last one dropped. */
  compactedThrough(seq: number): TailFrame | undefined {
    const { frames } = this;
    let dropped: TailFrame | undefined;
    while (this.head < frames.length && frames[this.head]!.lastSeq <= seq) {
      dropped = frames[this.head]!;
      frames[this.head++] = undefined!;
      for (let i = 0; i < dropped.hashes.length; i++) this.keys.remove(dropped.hashes[i]!, dropped.firstSeq + i);
      this.count -= dropped.hashes.length;
    }
    if (this.head > 1024 && this.head * 2 > frames.length) {
      this.frames = frames.slice(this.head);
      this.head = 0;
    }
    return dropped;
  }

  /** The first visible message after sequence number `compacted` with this id (and from `from`, when given). */
  get(id: string, compacted: number, from?: string): MessageRecord | undefined {
    const bytes = Buffer.from(id);
    let hit: MessageRecord | undefined;
    this.scan(compacted, (frame, at) => {
      if (!recordHasId(frame, at, bytes)) return true;
      const record = readRecord(frame, at);
      if (from !== undefined && record.from !== from) return true;
      hit = record;
      return false;
    });
    return hit;
  }

  /** The first `want` visible messages after sequence number `compacted` that match, in the query's order. */
  query(query: MessageQuery, bounds: Bounds, compacted: number, want: number): MessageRecord[] {
    const hits: MessageRecord[] = [];
    const senders = query.from?.map((from) => Buffer.from(from));
    this.scan(compacted, (frame, at) => {
      // The time bounds and the sender first, from the raw record: most of a large tail fails
      // them, and decoding every record made a device query over a full tail take tens of ms.
      const ts = recordTs(frame, at);
      if (ts < bounds.lo || ts > bounds.hi || ts >= bounds.until) return true;
      if (senders && !recordFromAny(frame, at, senders)) return true;
      const record = readRecord(frame, at);
      if (recordMatches(record, query, bounds)) hits.push(record);
      return true;
    });
    hits.sort(hitOrder(bounds.desc));
    if (hits.length > want) hits.length = want;
    return hits;
  }

  /** Up to `limit` visible messages after sequence number `after`, in sequence order. */
  feed(after: number, limit: number): MessageRecord[] {
    const hits: MessageRecord[] = [];
    if (limit > 0) {
      this.scan(after, (frame, at) => {
        hits.push(readRecord(frame, at));
        return hits.length < limit;
      });
    }
    return hits;
  }

  /** How many visible messages follow sequence number `after` (sequence numbers in the tail have no gaps). */
  countAfter(after: number): number {
    const first = this.frames[this.head]?.firstSeq;
    return first === undefined ? 0 : Math.max(0, this.visible - Math.max(after, first - 1));
  }

  /** Visits visible records after sequence number `after` in order, while `visit` returns true. */
  private scan(after: number, visit: (frame: Buffer, at: number) => boolean): void {
    const { frames } = this;
    for (let f = this.frameOf(after + 1); f < frames.length; f++) {
      const { frame, firstSeq, starts } = frames[f]!;
      for (let i = Math.max(0, after + 1 - firstSeq); i < starts.length; i++) {
        if (firstSeq + i > this.visible || !visit(frame, starts[i]!)) return;
      }
    }
  }

  /** Index of the frame holding `seq`, or of the first frame after it. */
  private frameOf(seq: number): number {
    let lo = this.head;
    let hi = this.frames.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.frames[mid]!.lastSeq < seq) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private recordAt(seq: number) {
    const { frame, firstSeq, starts } = this.frames[this.frameOf(seq)]!;
    return readRecord(frame, starts[seq - firstSeq]!);
  }
}
