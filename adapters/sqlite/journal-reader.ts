import { closeSync, existsSync, openSync, readSync, readdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { CompactionInput } from './chunks.js';
import { segmentName, segmentSeq } from './journal.js';
import { FRAME_HEADER, readFrame, recordLength, recordSeq } from './record.js';

/** Frames are one append each; no append comes near this. */
const MAX_FRAME = 2 ** 31 - 1;

/** Frames read back, ready for compaction. */
export interface JournalBatch extends CompactionInput {
  firstSeq: number;
  lastSeq: number;
}

/**
 * Reads the journal back at start (on the compactor thread): every segment in order, frame by
 * frame, each checked against its CRC. A bad or partial frame at the end of the last segment
 * ends the journal: a write that never completed, so was never acknowledged. Anywhere else it
 * is damage, and an error: the store does not start over acknowledged messages it cannot read.
 */
export class JournalReader {
  private readonly segments: number[];
  private index = 0;
  private fd: number | null = null;
  private offset = 0;
  /** The sequence number the next record must carry, once the first is known. */
  private nextSeq = 0;
  /** A batch's frames go here one after another (compaction wants one buffer); the next batch reuses it. */
  private arena = Buffer.allocUnsafe(0);
  private readonly header = Buffer.allocUnsafe(FRAME_HEADER);

  constructor(private readonly dir: string) {
    this.segments = existsSync(dir)
      ? readdirSync(dir)
          .map(segmentSeq)
          .filter((seq): seq is number => seq !== null)
          .sort((a, b) => a - b)
      : [];
  }

  /** The sequence number after the last record read. */
  get endSeq(): number {
    return this.nextSeq;
  }

  /** The next whole frames after sequence number `after`, until at least `max` messages; null at the end of the journal. */
  read(max: number, after: number): JournalBatch | null {
    const spans: number[] = [];
    let used = 0;
    let firstSeq = 0;
    let lastSeq = 0;
    while (lastSeq - firstSeq < max) {
      const length = this.frameLength();
      if (length === 0) break;
      if (used + length > this.arena.length) {
        if (spans.length > 0) break; // the rest goes in the next batch
        // The previous batch is compacted by now: its space can go.
        this.arena = Buffer.allocUnsafe(Math.max(length, this.arena.length * 2, 1 << 20));
      }
      const frame = this.readInto(this.arena, used, length);
      if (typeof readFrame(frame, 0) === 'string') {
        if (this.index === this.segments.length - 1) break;
        throw this.damaged('bad');
      }
      let last = 0;
      for (let at = FRAME_HEADER; at < frame.length; at += recordLength(frame, at)) last = recordSeq(frame, at);
      const first = recordSeq(frame, FRAME_HEADER);
      if (this.nextSeq > 0 && first !== this.nextSeq) throw this.damaged('out-of-sequence');
      this.nextSeq = last + 1;
      this.offset += length;
      if (last <= after) continue; // compacted before the crash; its space is reused
      if (spans.length === 0) firstSeq = first;
      lastSeq = last;
      spans.push(used + FRAME_HEADER, used + length);
      used += length;
    }
    return spans.length > 0 ? { buf: this.arena, spans, firstSeq, lastSeq } : null;
  }

  /** Deletes every segment: once what they held is compacted, the journal starts afresh. */
  removeAll(): void {
    this.close();
    for (const seq of this.segments) unlinkSync(join(this.dir, segmentName(seq)));
  }

  private close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }

  /**
   * The length of the frame at the current position (header included), going on to the next
   * segment at the end of one; 0 at the end of the journal.
   */
  private frameLength(): number {
    while (this.index < this.segments.length) {
      const header = this.readInto(this.header, 0, FRAME_HEADER);
      if (header.length > 0) {
        // A length beyond any frame the writer makes is damage: never allocate it.
        const length = header.length === FRAME_HEADER ? header.readUInt32LE(4) : MAX_FRAME;
        if (length < MAX_FRAME - FRAME_HEADER) return FRAME_HEADER + length;
        if (this.index === this.segments.length - 1) return 0;
        throw this.damaged('bad');
      }
      // The end of a segment: the next one must carry on where it stopped.
      this.close();
      this.index++;
      this.offset = 0;
      if (this.index < this.segments.length && this.nextSeq > 0 && this.segments[this.index] !== this.nextSeq) throw this.damaged('missing');
    }
    return 0;
  }

  private readInto(buf: Buffer, at: number, length: number): Buffer {
    this.fd ??= openSync(join(this.dir, segmentName(this.segments[this.index]!)), 'r');
    let got = 0;
    for (let n; got < length && (n = readSync(this.fd, buf, at + got, length - got, this.offset + got)) > 0;) got += n;
    return buf.subarray(at, at + got);
  }

  private damaged(what: string): Error {
    const where = this.index < this.segments.length ? join(this.dir, segmentName(this.segments[this.index]!)) : this.dir;
    return new Error(`journal segment ${where} is damaged at byte ${this.offset} (${what} frame): it may hold acknowledged messages, so the store does not start until it is repaired or moved away`);
  }
}
