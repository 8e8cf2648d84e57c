// Framing (AMQP 1.0 §2.3): an 8-byte header (size, data offset, type,
// channel), the frame body, then the payload of a transfer. The parser
// reassembles frames from socket chunks: whole frames inside one chunk are
// passed on as views (no copy); a frame spanning chunks is copied once into a
// buffer of its declared size, which is checked against our max-frame-size
// before anything is allocated. (A list of chunks, as `bl` keeps, measured
// 2.3-2.8x slower on small frames; see bench/frame-parser.ts.) Frame bodies
// are decoded by a table of the performatives a layer accepts, into a union
// that handler tables are typed by.
import { inspect } from 'node:util';
import { Reader } from './codec/decoder.js';
import { compositeOf, encodeComposite, fromList, type Composite } from './codec/described.js';
import type { Writer } from './codec/encoder.js';
import { AmqpError, Condition, ConnectionError, DecodeError } from './errors.js';

export const FrameType = { Amqp: 0x00, Sasl: 0x01 } as const;
/** §2.2: protocol headers, "AMQP" + protocol id + version 1.0.0. */
export const AMQP_HEADER = Buffer.from([0x41, 0x4d, 0x51, 0x50, 0x00, 0x01, 0x00, 0x00]);
export const SASL_HEADER = Buffer.from([0x41, 0x4d, 0x51, 0x50, 0x03, 0x01, 0x00, 0x00]);
/** §2.7.1: the smallest max-frame-size, and the limit before open is exchanged. */
export const MIN_MAX_FRAME_SIZE = 512;
const FRAME_HEADER_SIZE = 8;

export class FramingError extends AmqpError {
  constructor(description: string) {
    super('ERR_AMQP_FRAMING', { condition: Condition.FramingError, description });
  }
}

/** Receives each whole frame; returns true when the bytes after it belong to another layer (SASL → AMQP). */
type FrameHandler = (type: number, channel: number, frame: Buffer, bodyStart: number) => boolean | void;
const NOTHING = Buffer.alloc(0);

export class FrameParser {
  /** Largest frame we accept; raised from 512 once our open is sent (§2.7.1). */
  maxFrameSize = MIN_MAX_FRAME_SIZE;
  private readonly head = Buffer.alloc(FRAME_HEADER_SIZE);
  private headLength = 0;
  private partial: Buffer | null = null;
  private filled = 0;

  constructor(private readonly onFrame: FrameHandler) {}

  /**
   * Parses what it can of `chunk`. Returns the bytes left unparsed because a
   * frame's handler said the rest belongs to another layer; none otherwise.
   */
  push(chunk: Buffer): Buffer {
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
          if (this.emit(frame)) return chunk.subarray(off);
        }
        continue;
      }
      if (this.headLength === 0 && chunk.length - off >= FRAME_HEADER_SIZE) {
        const size = this.checkSize(chunk.readUInt32BE(off));
        if (chunk.length - off >= size) {
          const frame = chunk.subarray(off, off + size);
          off += size;
          if (this.emit(frame)) return chunk.subarray(off);
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
      if (size === FRAME_HEADER_SIZE) {
        const frame = this.partial;
        this.partial = null;
        if (this.emit(frame)) return chunk.subarray(off);
      }
    }
    return NOTHING;
  }

  private checkSize(size: number): number {
    if (size < FRAME_HEADER_SIZE) throw new FramingError(`frame size ${size} is below the 8-byte header`);
    if (size > this.maxFrameSize) throw new FramingError(`frame size ${size} exceeds max-frame-size ${this.maxFrameSize}`);
    return size;
  }

  private emit(frame: Buffer): boolean {
    const doff = frame[4];
    if (doff < 2 || doff * 4 > frame.length) throw new FramingError(`invalid data offset ${doff}`);
    return this.onFrame(frame[5], frame.readUInt16BE(6), frame, doff * 4) === true;
  }
}

/** The composites a layer accepts in its frames, by the name frames are dispatched on. */
export type FrameTable<B> = { readonly [K in keyof B]: Composite<B[K] & object> };

/** A decoded frame of table `B`: a union that narrows on `name` to the shape of `body`. */
export type Frame<B> = { [K in keyof B]: { name: K; body: B[K]; payload: Buffer } }[keyof B];

/** One handler per frame of table `B`, with the payload and a context (e.g. the channel). */
export type FrameHandlers<B, C> = { readonly [K in keyof B]: (body: B[K], payload: Buffer, context: C) => void };

/** Calls the handler of the frame's performative with its typed body. */
export function dispatch<B, K extends keyof B, C>(handlers: FrameHandlers<B, C>, frame: { name: K; body: B[K]; payload: Buffer }, context: C): void {
  handlers[frame.name](frame.body, frame.payload, context);
}

/** Decodes frame bodies with one table: anything else in a frame is a protocol error. */
export class FrameDecoder<B> {
  private readonly names = new Map<Composite, keyof B>();

  constructor(
    readonly layer: string,
    table: FrameTable<B>,
  ) {
    for (const name of Object.keys(table) as Array<keyof B>) this.names.set(table[name], name);
  }

  /** The frame's performative, body and payload; null for an empty frame (a heartbeat, §2.4.5). */
  decode(frame: Buffer, bodyStart: number): Frame<B> | null {
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
    const name = this.names.get(composite);
    if (name === undefined) {
      throw new ConnectionError({ condition: Condition.NotAllowed, description: `${composite.name} is not a ${this.layer} frame` }, 'ERR_AMQP_PROTOCOL');
    }
    const body = fromList(composite, r.read());
    // Name and body come from the same table row, which is the pairing Frame<B> states.
    return { name, body, payload: frame.subarray(r.pos) } as Frame<B>;
  }
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
export function writeFrame<T extends object>(w: Writer, type: number, channel: number, composite: Composite<T>, body: T, payload?: Uint8Array): number {
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

/** A readable line for the nitrogen:amqp:frames log; SASL data (credentials) shows as its length. */
export function describeFrame(direction: '->' | '<-', channel: number, name: string | null, body?: object, payloadLength = 0): string {
  if (name === null) return `${direction} [${channel}] empty (heartbeat)`;
  const safe = name.startsWith('sasl-') && body !== undefined ? Object.fromEntries(Object.entries(body).map(([k, v]) => [k, Buffer.isBuffer(v) ? `<${v.length} bytes>` : v])) : body;
  const shown = inspect(safe, { depth: 4, breakLength: Infinity, maxStringLength: 120 });
  return `${direction} [${channel}] ${name} ${shown}${payloadLength ? ` +${payloadLength} payload bytes` : ''}`;
}
