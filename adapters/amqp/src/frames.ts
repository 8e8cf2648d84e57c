// Framing (AMQP 1.0 §2.3): an 8-byte header (size, data offset, type,
// channel), the frame body, then the payload of a transfer. The parser
// reassembles frames from socket chunks: whole frames inside one chunk are
// passed on as views (no copy); a frame spanning chunks is copied once into a
// buffer of its declared size, which is checked against our max-frame-size
// before anything is allocated.
import { inspect } from 'node:util';
import { Reader } from './codec/decoder.js';
import { compositeOf, encodeComposite, fromList, type Composite } from './codec/described.js';
import type { Writer } from './codec/encoder.js';
import { AmqpError, Condition, DecodeError } from './errors.js';

export const FrameType = { Amqp: 0x00, Sasl: 0x01 } as const;
/** §2.2: protocol headers, "AMQP" + protocol id + version 1.0.0. */
export const AMQP_HEADER = Buffer.from([0x41, 0x4d, 0x51, 0x50, 0x00, 0x01, 0x00, 0x00]);
export const SASL_HEADER = Buffer.from([0x41, 0x4d, 0x51, 0x50, 0x03, 0x01, 0x00, 0x00]);
export const TLS_HEADER = Buffer.from([0x41, 0x4d, 0x51, 0x50, 0x02, 0x01, 0x00, 0x00]);
/** §2.7.1: the smallest max-frame-size, and the limit before open is exchanged. */
export const MIN_MAX_FRAME_SIZE = 512;
export const FRAME_HEADER_SIZE = 8;

export class FramingError extends AmqpError {
  constructor(description: string) {
    super('ERR_AMQP_FRAMING', { condition: Condition.FramingError, description });
  }
}

export type FrameHandler = (type: number, channel: number, frame: Buffer, bodyStart: number) => void;

export class FrameParser {
  /** Largest frame we accept; raised from 512 once our open is sent (§2.7.1). */
  maxFrameSize = MIN_MAX_FRAME_SIZE;
  private readonly head = Buffer.alloc(FRAME_HEADER_SIZE);
  private headLength = 0;
  private partial: Buffer | null = null;
  private filled = 0;

  constructor(private readonly onFrame: FrameHandler) {}

  push(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length) {
      if (this.partial !== null) {
        const n = Math.min(this.partial.length - this.filled, chunk.length - off);
        chunk.copy(this.partial, this.filled, off, off + n);
        this.filled += n;
        off += n;
        if (this.filled === this.partial.length) {
          const frame = this.partial;
          this.partial = null;
          this.emit(frame);
        }
        continue;
      }
      if (this.headLength === 0 && chunk.length - off >= FRAME_HEADER_SIZE) {
        const size = this.checkSize(chunk.readUInt32BE(off));
        if (chunk.length - off >= size) {
          this.emit(chunk.subarray(off, off + size));
          off += size;
        } else {
          this.partial = Buffer.allocUnsafe(size);
          this.filled = chunk.copy(this.partial, 0, off);
          off = chunk.length;
        }
        continue;
      }
      // A header split across chunks: gather its 8 bytes first.
      const n = Math.min(FRAME_HEADER_SIZE - this.headLength, chunk.length - off);
      chunk.copy(this.head, this.headLength, off, off + n);
      this.headLength += n;
      off += n;
      if (this.headLength < FRAME_HEADER_SIZE) break;
      this.headLength = 0;
      const size = this.checkSize(this.head.readUInt32BE(0));
      this.partial = Buffer.allocUnsafe(size);
      this.filled = this.head.copy(this.partial, 0);
      if (size === FRAME_HEADER_SIZE) { const frame = this.partial; this.partial = null; this.emit(frame); }
    }
  }

  private checkSize(size: number): number {
    if (size < FRAME_HEADER_SIZE) throw new FramingError(`frame size ${size} is below the 8-byte header`);
    if (size > this.maxFrameSize) throw new FramingError(`frame size ${size} exceeds max-frame-size ${this.maxFrameSize}`);
    return size;
  }

  private emit(frame: Buffer): void {
    const doff = frame[4];
    if (doff < 2 || doff * 4 > frame.length) throw new FramingError(`invalid data offset ${doff}`);
    this.onFrame(frame[5], frame.readUInt16BE(6), frame, doff * 4);
  }
}

/** A decoded frame body: the performative and what follows it (a transfer's payload). */
export interface FrameBody {
  composite: Composite;
  body: Record<string, unknown>;
  payload: Buffer;
}

/** Decodes the body of a frame; null for an empty frame (a heartbeat, §2.4.5). */
export function decodeFrameBody(frame: Buffer, bodyStart: number): FrameBody | null {
  if (bodyStart === frame.length) return null;
  const r = new Reader(frame, bodyStart);
  if (r.u8() !== 0x00) throw new DecodeError('frame body is not a described type');
  let composite: Composite | undefined;
  if (frame[r.pos] === 0x53 && r.remaining >= 2) {
    composite = compositeOf(BigInt(frame[r.pos + 1]));
    r.pos += 2;
  } else {
    composite = compositeOf(r.read());
  }
  if (composite === undefined) throw new DecodeError('unknown performative');
  const body = fromList(composite, r.read());
  return { composite, body, payload: frame.subarray(r.pos) };
}

/** Starts a frame in `w` (size to be filled by endFrame); returns where it starts. */
export function beginFrame(w: Writer, type: number, channel: number): number {
  const start = w.pos;
  w.ensure(FRAME_HEADER_SIZE);
  w.buf[start + 4] = 2; // data offset in 4-byte words: no extended header
  w.buf[start + 5] = type;
  w.buf.writeUInt16BE(channel, start + 6);
  w.pos += FRAME_HEADER_SIZE;
  return start;
}

/** Fills in the size of the frame begun at `start`; returns the size. */
export function endFrame(w: Writer, start: number): number {
  const size = w.pos - start;
  w.buf.writeUInt32BE(size, start);
  return size;
}

/** Appends one frame: header, performative, optional payload. Returns the frame's size. */
export function writeFrame(
  w: Writer, type: number, channel: number, composite: Composite, body: object, payload?: Uint8Array,
): number {
  const start = beginFrame(w, type, channel);
  try {
    encodeComposite(w, composite, body);
  } catch (e) {
    w.pos = start; // never leave half a frame in the output
    throw e;
  }
  if (payload) w.bytes(payload);
  return endFrame(w, start);
}

/** Appends an empty frame (§2.4.5 heartbeat). */
export function writeEmptyFrame(w: Writer): void {
  w.ensure(FRAME_HEADER_SIZE);
  w.buf.writeUInt32BE(FRAME_HEADER_SIZE, w.pos);
  w.buf.writeUInt32BE(0x02000000, w.pos + 4);
  w.pos += FRAME_HEADER_SIZE;
}

/** A readable line for the nitrogen:amqp:frames log. */
export function describeFrame(direction: '->' | '<-', channel: number, f: FrameBody | null): string {
  if (f === null) return `${direction} [${channel}] empty (heartbeat)`;
  const body = inspect(f.body, { depth: 4, breakLength: Infinity, maxStringLength: 120 });
  return `${direction} [${channel}] ${f.composite.name} ${body}${f.payload.length ? ` +${f.payload.length} payload bytes` : ''}`;
}
