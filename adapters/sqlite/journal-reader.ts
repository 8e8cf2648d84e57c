import { closeSync, existsSync, openSync, readSync, readdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { segmentName, segmentSeq } from './journal.js';
import { FRAME_HEADER, readFrame, readRecords, type MessageRecord } from './record.js';

/** Frames are one append each; no append comes near this. */
const MAX_FRAME = 2 ** 31 - 1;

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
  /** Frames of one read() go here one after another; the next read() reuses the space. */
  private arena = Buffer.allocUnsafe(0);
  private used = 0;
  private readonly header = Buffer.allocUnsafe(FRAME_HEADER);

  constructor(private readonly dir: string) {
    this.segments = existsSync(dir) ? readdirSync(dir).map(segmentSeq).filter((seq): seq is number => seq !== null).sort((a, b) => a - b) : [];
  }

  /** The sequence number after the last record read. */
  get endSeq(): number {
    return this.nextSeq;
  }

  /** Whole frames, in order, until at least `max` messages; empty at the end of the journal. */
  read(max: number): MessageRecord[] {
    const records: MessageRecord[] = [];
    this.used = 0;
    while (records.length < max) {
      const frame = this.nextFrame();
      if (!frame) break;
      const framed = readRecords(frame, FRAME_HEADER);
      if (framed.length === 0 || (this.nextSeq > 0 && framed[0]!.seq !== this.nextSeq)) throw this.damaged('out-of-sequence');
      for (const record of framed) records.push(record);
      this.nextSeq = framed[framed.length - 1]!.seq + 1;
      this.offset += frame.length;
      this.used += frame.length;
    }
    return records;
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

  /** The frame at the current position (header included), going on to the next segment at the end of one. */
  private nextFrame(): Buffer | null {
    while (this.index < this.segments.length) {
      const header = this.readInto(this.header, 0, FRAME_HEADER);
      const last = this.index === this.segments.length - 1;
      if (header.length > 0) {
        const length = header.length === FRAME_HEADER ? header.readUInt32LE(4) : 0;
        // A length beyond any frame the writer makes is damage: do not try to allocate it.
        const whole = length > 0 && length <= MAX_FRAME ? this.readFrameBytes(FRAME_HEADER + length) : header;
        const frame = readFrame(whole, 0);
        if (typeof frame !== 'string') return whole;
        if (!last) throw this.damaged(frame);
      }
      // The end of a segment: the next one must carry on where it stopped.
      this.close();
      this.index++;
      this.offset = 0;
      if (this.index < this.segments.length && this.nextSeq > 0 && this.segments[this.index] !== this.nextSeq) throw this.damaged('missing');
    }
    return null;
  }

  private readFrameBytes(length: number): Buffer {
    if (this.arena.length < this.used + length) {
      // Earlier frames of this read keep the old arena alive while their records need it.
      this.arena = Buffer.allocUnsafe(Math.max(this.used + length, this.arena.length * 2, 1 << 20));
      this.used = 0;
    }
    return this.readInto(this.arena, this.used, length);
  }

  private readInto(buf: Buffer, at: number, length: number): Buffer {
    this.fd ??= openSync(join(this.dir, segmentName(this.segments[this.index]!)), 'r');
    let got = 0;
    for (let n; got < length && (n = readSync(this.fd, buf, at + got, length - got, this.offset + got)) > 0; ) got += n;
    return buf.subarray(at, at + got);
  }

  private damaged(what: string): Error {
    const where = this.index < this.segments.length ? join(this.dir, segmentName(this.segments[this.index]!)) : this.dir;
    return new Error(`journal segment ${where} is damaged at byte ${this.offset} (${what} frame): it may hold acknowledged messages, so the store does not start until it is repaired or moved away`);
  }
}
