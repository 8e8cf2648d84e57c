import { crc32 } from 'node:zlib';
import { encodeMessage, type Message } from '../../core/message.js';

/**
 * The binary form of a stored message, shared by the journal and the chunks: a small header with
 * what indexing, filtering and ordering need, then the envelope's JSON text untouched. Compaction
 * moves records from the journal into chunks byte for byte, and nothing but a query's results
 * is ever parsed as JSON.
 *
 * Record (little-endian): u32 length of the whole record · f64 seq · f64 ts (ms) · f64 expires
 * (ms, NaN when none) · f64 committed (ms) · u16 byte lengths of id, from, type, to (0xffff: no
 * `to`) · u16 tag count · the four strings (UTF-8) · per tag u16 length + bytes · envelope JSON.
 */
/** A stored message: its header decoded, its JSON left in `buf` until `read()` parses it. */
export class MessageRecord {
  /** The chunk compaction put it in. */
  chunk = 0;

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

const FIXED = 4 + 8 * 4 + 2 * 5;
const NO_TO = 0xffff;

/** Where a record's header fields are, for readers that skip decoding it (compaction). */
export const RECORD = { seq: 4, ts: 12, expires: 20, idLength: 36, fromLength: 38, typeLength: 40, toLength: 42, tagCount: 44, strings: FIXED, noTo: NO_TO } as const;
const MAX_FIELD = 0xfffe;

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
  return FIXED + chars * 3;
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
    buf.writeDoubleLE(firstSeq + i, at + 4);
    buf.writeDoubleLE(parseTs(m.ts), at + 12);
    buf.writeDoubleLE(m.expires === undefined ? NaN : Date.parse(m.expires), at + 20);
    buf.writeDoubleLE(committed, at + 28);
    buf.writeUInt16LE(m.tags?.length ?? 0, at + 44);
    at += FIXED;
    at = writeField(buf, at, start + 36, m.id);
    at = writeField(buf, at, start + 38, m.from);
    at = writeField(buf, at, start + 40, m.type);
    if (m.to === undefined) buf.writeUInt16LE(NO_TO, start + 42);
    else at = writeField(buf, at, start + 42, m.to);
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
  return buf.readDoubleLE(at + 12);
}

/** The id of the record at `at`. */
export function recordId(buf: Buffer, at: number): string {
  return readField(buf, at + FIXED, buf.readUInt16LE(at + 36));
}

/** The sequence number of the record at `at`. */
export function recordSeq(buf: Buffer, at: number): number {
  return buf.readDoubleLE(at + 4);
}

/** The length of the record at `at`. */
export function recordLength(buf: Buffer, at: number): number {
  return buf.readUInt32LE(at);
}

/** Whether the record at `at` has this id (given as UTF-8), without decoding it. */
export function recordHasId(buf: Buffer, at: number, id: Buffer): boolean {
  const length = buf.readUInt16LE(at + 36);
  return length === id.length && buf.compare(id, 0, length, at + FIXED, at + FIXED + length) === 0;
}

/** Decodes the header of the record at `at`. */
export function readRecord(buf: Buffer, at: number): MessageRecord {
  const idLength = buf.readUInt16LE(at + 36);
  const fromLength = buf.readUInt16LE(at + 38);
  const typeLength = buf.readUInt16LE(at + 40);
  const toLength = buf.readUInt16LE(at + 42);
  const tagCount = buf.readUInt16LE(at + 44);
  let p = at + FIXED;
  const id = readField(buf, p, idLength);
  const from = readField(buf, (p += idLength), fromLength);
  const type = readField(buf, (p += fromLength), typeLength);
  p += typeLength;
  let to: string | null = null;
  if (toLength !== NO_TO) {
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
  return new MessageRecord(buf, at, at + buf.readUInt32LE(at), p, buf.readDoubleLE(at + 4), buf.readDoubleLE(at + 12), buf.readDoubleLE(at + 20), buf.readDoubleLE(at + 28), id, from, type, to, tags);
}

/** Every record between `start` and `end` (a frame's records, or a chunk). */
export function readRecords(buf: Buffer, start = 0, end = buf.length): MessageRecord[] {
  const records: MessageRecord[] = [];
  for (let at = start; at < end; at = records[records.length - 1]!.end) records.push(readRecord(buf, at));
  return records;
}
