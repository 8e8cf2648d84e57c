import { crc32 } from 'node:zlib';
import { encodeMessage, type Message } from '../../core/message.js';

/*
 * The binary form of a stored message, shared by the journal and the chunks: a small header
 * with what indexing, filtering and ordering need, then the envelope's JSON text untouched.
 * Compaction moves records from the journal into chunks byte for byte, and nothing but a read's
 * results is ever parsed as JSON.
 *
 * Record (little-endian): u32 length of the whole record · f64 seq · f64 ts (ms) · f64 expires
 * (ms, NaN when none) · f64 committed (ms) · u16 byte lengths of id, from, type, to (0xffff: no
 * `to`) · u16 tag count · the four strings (UTF-8) · per tag u16 length + bytes · envelope JSON.
 */

/** Where a record's header fields are, for readers that skip decoding it. */
export const RECORD = {
  seq: 4,
  ts: 12,
  expires: 20,
  committed: 28,
  idLength: 36,
  fromLength: 38,
  typeLength: 40,
  toLength: 42,
  tagCount: 44,
  /** Where the strings start. */
  strings: 46,
  /** The `to` length of a message without `to`. */
  noTo: 0xffff,
} as const;
const MAX_FIELD = 0xfffe;

/** A stored message: its header decoded, its JSON left in `buf` until `read()` parses it. */
export class MessageRecord {
  constructor(
    /** The buffer it lives in (a frame in the ring, a chunk), and where in it. */
    readonly buf: Buffer,
    readonly start: number,
    readonly end: number,
    /** Where its JSON starts. */
    readonly json: number,
    readonly seq: number,
    readonly ts: number,
    /** NaN when the message has no `expires`. */
    readonly expires: number,
    readonly committed: number,
    readonly id: string,
    readonly from: string,
    readonly type: string,
    readonly to: string | null,
    readonly tags: string[] | null,
  ) {}

  read(): Message {
    return JSON.parse(this.buf.toString('utf8', this.json, this.end)) as Message;
  }
}

/** Frame header: u32 magic · u32 payload length · u32 CRC-32 of the payload. */
export const FRAME_HEADER = 12;
const MAGIC = 0x314a464e; // "NFJ1"

function writeField(buf: Buffer, at: number, lengthAt: number, value: string): number {
  const n = buf.write(value, at, 'utf8');
  if (n > MAX_FIELD) throw new RangeError(`a message field takes more than ${MAX_FIELD} bytes`);
  buf.writeUInt16LE(n, lengthAt);
  return at + n;
}

/** The most bytes a message can take as a record (UTF-8 takes at most 3 bytes per UTF-16 unit). */
export function recordBound(m: Message): number {
  let chars = encodeMessage(m).length + m.id.length + m.from.length + m.type.length + (m.to?.length ?? 0);
  if (m.tags) for (const tag of m.tags) chars += tag.length + 1;
  return RECORD.strings + chars * 3;
}

/** One-entry cache of Date.parse: the messages of a group commit mostly share their ts string. */
let lastTs = { text: '', ms: 0 };

function parseTs(text: string): number {
  if (text !== lastTs.text) lastTs = { text, ms: Date.parse(text) };
  return lastTs.ms;
}

/**
 * Encodes messages as one journal frame into `buf` (at least FRAME_HEADER plus their
 * recordBound), numbering them from `firstSeq`: one write, checked as a whole on recovery.
 * Returns its length and where each record starts.
 */
export function encodeFrame(messages: readonly Message[], firstSeq: number, committed: number, buf: Buffer): { length: number; starts: Uint32Array } {
  const starts = new Uint32Array(messages.length);
  let at = FRAME_HEADER;
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i]!;
    const start = (starts[i] = at);
    buf.writeDoubleLE(firstSeq + i, at + RECORD.seq);
    buf.writeDoubleLE(parseTs(m.ts), at + RECORD.ts);
    buf.writeDoubleLE(m.expires === undefined ? NaN : Date.parse(m.expires), at + RECORD.expires);
    buf.writeDoubleLE(committed, at + RECORD.committed);
    buf.writeUInt16LE(m.tags?.length ?? 0, at + RECORD.tagCount);
    at += RECORD.strings;
    at = writeField(buf, at, start + RECORD.idLength, m.id);
    at = writeField(buf, at, start + RECORD.fromLength, m.from);
    at = writeField(buf, at, start + RECORD.typeLength, m.type);
    if (m.to === undefined) buf.writeUInt16LE(RECORD.noTo, start + RECORD.toLength);
    else at = writeField(buf, at, start + RECORD.toLength, m.to);
    for (const tag of m.tags ?? []) at = writeField(buf, at + 2, at, tag);
    at += buf.write(encodeMessage(m), at, 'utf8');
    buf.writeUInt32LE(at - start, start);
  }
  buf.writeUInt32LE(MAGIC, 0);
  buf.writeUInt32LE(at - FRAME_HEADER, 4);
  buf.writeUInt32LE(crc32(buf.subarray(FRAME_HEADER, at)), 8);
  return { length: at, starts };
}

/**
 * The frame at `at` in `buf`: its records' bounds, or `incomplete` when `buf` ends inside it,
 * or `invalid` when its header or checksum is wrong (a torn write, or damage).
 */
export function readFrame(buf: Buffer, at: number): { start: number; end: number } | 'incomplete' | 'invalid' {
  if (buf.length - at < FRAME_HEADER) return 'incomplete';
  if (buf.readUInt32LE(at) !== MAGIC) return 'invalid';
  const start = at + FRAME_HEADER;
  const end = start + buf.readUInt32LE(at + 4);
  if (end > buf.length) return 'incomplete';
  return crc32(buf.subarray(start, end)) === buf.readUInt32LE(at + 8) ? { start, end } : 'invalid';
}

function readField(buf: Buffer, at: number, length: number): string {
  return buf.toString('utf8', at, at + length);
}

/** The `ts` of the record at `at`, without decoding it. */
export function recordTs(buf: Buffer, at: number): number {
  return buf.readDoubleLE(at + RECORD.ts);
}

/** The id of the record at `at`. */
export function recordId(buf: Buffer, at: number): string {
  return readField(buf, at + RECORD.strings, buf.readUInt16LE(at + RECORD.idLength));
}

/** The sequence number of the record at `at`. */
export function recordSeq(buf: Buffer, at: number): number {
  return buf.readDoubleLE(at + RECORD.seq);
}

/** The length of the record at `at`. */
export function recordLength(buf: Buffer, at: number): number {
  return buf.readUInt32LE(at);
}

/** Whether the record at `at` has this id (given as UTF-8), without decoding it. */
export function recordHasId(buf: Buffer, at: number, id: Buffer): boolean {
  const length = buf.readUInt16LE(at + RECORD.idLength);
  const start = at + RECORD.strings;
  return length === id.length && buf.compare(id, 0, length, start, start + length) === 0;
}

/** Whether the record at `at` was sent by one of `senders` (UTF-8 bytes), without decoding it. */
export function recordFromAny(buf: Buffer, at: number, senders: readonly Buffer[]): boolean {
  const length = buf.readUInt16LE(at + RECORD.fromLength);
  const start = at + RECORD.strings + buf.readUInt16LE(at + RECORD.idLength);
  for (const sender of senders) if (sender.length === length && sameBytes(buf, start, sender)) return true;
  return false;
}

/** Byte by byte: for short strings cheaper than a call into `Buffer.compare`. */
function sameBytes(buf: Buffer, start: number, bytes: Buffer): boolean {
  for (let i = 0; i < bytes.length; i++) if (buf[start + i] !== bytes[i]) return false;
  return true;
}

/** Decodes the header of the record at `at`. */
export function readRecord(buf: Buffer, at: number): MessageRecord {
  const idLength = buf.readUInt16LE(at + RECORD.idLength);
  const fromLength = buf.readUInt16LE(at + RECORD.fromLength);
  const typeLength = buf.readUInt16LE(at + RECORD.typeLength);
  const toLength = buf.readUInt16LE(at + RECORD.toLength);
  const tagCount = buf.readUInt16LE(at + RECORD.tagCount);
  let p = at + RECORD.strings;
  const id = readField(buf, p, idLength);
  const from = readField(buf, (p += idLength), fromLength);
  const type = readField(buf, (p += fromLength), typeLength);
  p += typeLength;
  let to: string | null = null;
  if (toLength !== RECORD.noTo) {
    to = readField(buf, p, toLength);
    p += toLength;
  }
  let tags: string[] | null = null;
  if (tagCount > 0) {
    tags = new Array<string>(tagCount);
    for (let i = 0; i < tagCount; i++) {
      const n = buf.readUInt16LE(p);
      tags[i] = readField(buf, p + 2, n);
      p += 2 + n;
    }
  }
  const seq = buf.readDoubleLE(at + RECORD.seq);
  const ts = buf.readDoubleLE(at + RECORD.ts);
  return new MessageRecord(buf, at, at + buf.readUInt32LE(at), p, seq, ts, buf.readDoubleLE(at + RECORD.expires), buf.readDoubleLE(at + RECORD.committed), id, from, type, to, tags);
}

/** Every record between `start` and `end` (a frame's records, or a chunk). */
export function readRecords(buf: Buffer, start = 0, end = buf.length): MessageRecord[] {
  const records: MessageRecord[] = [];
  for (let at = start; at < end; at = records[records.length - 1]!.end) records.push(readRecord(buf, at));
  return records;
}
