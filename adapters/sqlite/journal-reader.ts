import { closeSync, existsSync, openSync, readSync, readdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { Located } from './chunks.js';
import { segmentName, segmentSeq } from './journal.js';
import { FRAME_HEADER, readFrame, readRecords } from './record.js';

/** Frames are one append each; no append comes near this. */
const MAX_FRAME = 2 ** 31 - 1;

/**
 * Reads the journal back on the compactor thread, frame by frame in sequence order, following
 * the writer from segment to segment: a segment is named by its first sequence number, so the
 * one after a finished segment is known by name. Deletes segments once compaction has moved
 * everything in them into chunks.
 */
export class JournalReader {
  private segment: number;
  private fd: number | null = null;
  private offset = 0;
  /** Segments read to their end, with the last sequence number in each. */
  private readonly finished: Array<{ segment: number; lastSeq: number }> = [];
  /** The sequence number the next record must carry. */
  nextSeq: number;
  /**
   * Frames of one read() go here, one after another, and the space is reused by the next
   * read(): the caller is done with a read's records by then. Fresh buffers per frame cost
   * page faults that showed as microseconds of system time per message.
   */
  private arena = Buffer.allocUnsafe(0);
  private used = 0;
  private readonly header = Buffer.allocUnsafe(FRAME_HEADER);

  /**
   * Starts at the segment named `firstSeq`. With `recovering`, a bad or partial frame at the
   * end of the last segment ends the journal: a write that never completed, so was never
   * acknowledged. Anywhere else, or while running, it is damage, and an error.
   */
  constructor(
    private readonly dir: string,
    firstSeq: number,
    private readonly recovering: boolean,
  ) {
    this.segment = firstSeq;
    this.nextSeq = firstSeq;
  }

  /** The first sequence number of each segment on disk, in order. */
  static segments(dir: string): number[] {
    if (!existsSync(dir)) return [];
    return readdirSync(dir).map(segmentSeq).filter((seq): seq is number => seq !== null).sort((a, b) => a - b);
  }

  /** Whole frames from the current position up to sequence number `through`, until at least `max` messages. */
  read(through: number, max: number): Located[] {
    const located: Located[] = [];
    this.used = 0;
    while (located.length < max && this.nextSeq <= through) {
      const frame = this.nextFrame();
      if (!frame) break;
      const records = readRecords(frame, FRAME_HEADER);
      if (records.length === 0) throw this.damaged('empty');
      if (records[records.length - 1]!.seq > through) break;
      if (records[0]!.seq !== this.nextSeq) throw this.damaged(`out-of-sequence (${records[0]!.seq} where ${this.nextSeq} was due)`);
      for (const record of records) located.push({ buf: frame, record });
      this.nextSeq = records[records.length - 1]!.seq + 1;
      this.offset += frame.length;
      this.used += frame.length;
    }
    return located;
  }

  /** Deletes the segments whose every message is in chunks. */
  release(compacted: number): void {
    while (this.finished.length > 0 && this.finished[0]!.lastSeq <= compacted) {
      unlinkSync(join(this.dir, segmentName(this.finished.shift()!.segment)));
    }
  }

  /** After recovery, when every message read is in chunks: the journal starts afresh. */
  releaseAll(): void {
    this.close();
    this.finished.length = 0;
    for (const segment of JournalReader.segments(this.dir)) unlinkSync(join(this.dir, segmentName(segment)));
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }

  /** The frame at the current position (header included), moving on to the next segment at the end of this one. */
  private nextFrame(): Buffer | null {
    for (;;) {
      const header = this.readInto(this.header, 0, this.offset, FRAME_HEADER);
      if (header.length === 0) {
        if (!this.laterSegmentExists()) return null;
        this.close();
        this.finished.push({ segment: this.segment, lastSeq: this.nextSeq - 1 });
        this.segment = this.nextSeq;
        this.offset = 0;
        continue;
      }
      const length = header.length === FRAME_HEADER ? header.readUInt32LE(4) : 0;
      // A length beyond any frame the writer makes is damage; do not try to allocate it.
      const whole = length > 0 && length <= MAX_FRAME ? this.readFrameBytes(FRAME_HEADER + length) : header;
      const frame = readFrame(whole, 0);
      if (typeof frame !== 'string') return whole;
      if (this.recovering && !this.laterSegmentExists()) return null;
      throw this.damaged(frame);
    }
  }

  /** Whether the writer went on to a segment after this one (named by the next sequence number). */
  private laterSegmentExists(): boolean {
    return this.nextSeq !== this.segment && existsSync(join(this.dir, segmentName(this.nextSeq)));
  }

  /** Reads a frame at the current position into the arena, after this read's earlier frames. */
  private readFrameBytes(length: number): Buffer {
    if (this.arena.length < this.used + length) {
      // Earlier frames of this read keep the old arena alive as long as their records need it.
      this.arena = Buffer.allocUnsafe(Math.max(this.used + length, this.arena.length * 2, 1 << 20));
      this.used = 0;
    }
    return this.readInto(this.arena, this.used, this.offset, length);
  }

  private readInto(buf: Buffer, at: number, position: number, length: number): Buffer {
    this.fd ??= openSync(join(this.dir, segmentName(this.segment)), 'r');
    let got = 0;
    for (let n; got < length && (n = readSync(this.fd, buf, at + got, length - got, position + got)) > 0; ) got += n;
    return buf.subarray(at, at + got);
  }

  private damaged(what: string): Error {
    return new Error(`journal segment ${join(this.dir, segmentName(this.segment))} is damaged at byte ${this.offset} (${what} frame): it may hold acknowledged messages, so the store does not start until it is repaired or moved away`);
  }
}
