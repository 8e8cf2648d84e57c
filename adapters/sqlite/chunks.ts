import { RECORD } from './record.js';
import { CHUNK_SPAN_MS } from './schema.js';

/** One compaction's records: frames' record regions ([start, end) pairs) in one buffer, in sequence order. */
export interface CompactionInput {
  buf: Buffer;
  spans: number[];
}

/** One chunk as compaction writes it. */
export interface Chunk {
  sender: string;
  type: string;
  recipient: string | null;
  tsMin: number;
  tsMax: number;
  seqMin: number;
  expiresMin: number | null;
  /** Distinct tags of its messages. */
  tags: string[];
  count: number;
  /** The records, concatenated; valid only until the next chunk is built (its space is reused). */
  data: Buffer;
}

/** Limits that keep a chunk cheap to load for a query or a `get`. */
const CHUNK_MAX_MESSAGES = 512;
const CHUNK_MAX_BYTES = 256 * 1024;

/** Where chunks are assembled: fresh memory per chunk cost page faults and malloc time. */
let scratch = Buffer.allocUnsafeSlow(CHUNK_MAX_BYTES * 2);

/**
 * Groups a compaction's records into chunks, handing each to `take`, which returns its chunk
 * number: one sender, type and recipient per chunk (so every filter but time and tags holds
 * for a whole chunk or none of it), sorted by (ts, id), cut where the next record is
 * CHUNK_SPAN_MS or more after the chunk's first, or a size limit is reached.
 *
 * Records stay bytes in their frames, known by offset; strings are decoded once per chunk,
 * not per record. Compaction handles tens of thousands of records at a time, and an object
 * per record lived long enough to be promoted by the garbage collector, which cost more than
 * the rest of the grouping. Returns the records' offsets in sequence order and the chunk each
 * went into.
 */
export function buildChunks({ buf, spans }: CompactionInput, take: (chunk: Chunk) => number): { offsets: number[]; chunkOf: Float64Array } {
  const offsets: number[] = [];
  // Groups by a hash of the key bytes; a hash shared by different keys gets one group per key.
  const groups = new Map<number, number[][]>();
  for (let s = 0; s < spans.length; s += 2) {
    for (let at = spans[s]!; at < spans[s + 1]!; at += buf.readUInt32LE(at)) {
      const ordinal = offsets.push(at) - 1;
      const hash = keyHash(buf, at);
      let candidates = groups.get(hash);
      if (!candidates) groups.set(hash, (candidates = []));
      let group: number[] | undefined;
      for (const g of candidates) if (sameKey(buf, offsets[g[0]!]!, at)) group = g;
      if (!group) candidates.push((group = []));
      group.push(ordinal);
    }
  }
  const chunkOf = new Float64Array(offsets.length);
  const byOrder = (a: number, b: number) => compareAt(buf, offsets[a]!, offsets[b]!);
  for (const candidates of groups.values()) {
    for (const group of candidates) {
      // Usually in order already (server-assigned times grow with the sequence): check before sorting.
      for (let i = 1; i < group.length; i++) {
        if (byOrder(group[i - 1]!, group[i]!) > 0) {
          group.sort(byOrder);
          break;
        }
      }
      let start = 0;
      let bytes = 0;
      const firstTs = () => buf.readDoubleLE(offsets[group[start]!]! + RECORD.ts);
      for (let i = 0; i < group.length; i++) {
        const at = offsets[group[i]!]!;
        const size = buf.readUInt32LE(at);
        if (i > start && (i - start >= CHUNK_MAX_MESSAGES || bytes + size > CHUNK_MAX_BYTES || buf.readDoubleLE(at + RECORD.ts) - firstTs() >= CHUNK_SPAN_MS)) {
          emit(buf, offsets, group.slice(start, i), bytes, take, chunkOf);
          start = i;
          bytes = 0;
        }
        bytes += size;
      }
      emit(buf, offsets, group.slice(start), bytes, take, chunkOf);
    }
  }
  return { offsets, chunkOf };
}

/** The bytes of a record's sender, type and recipient, which follow its id. */
function keyStart(buf: Buffer, at: number): number {
  return at + RECORD.strings + buf.readUInt16LE(at + RECORD.idLength);
}

function keyLength(buf: Buffer, at: number): number {
  const to = buf.readUInt16LE(at + RECORD.toLength);
  return buf.readUInt16LE(at + RECORD.fromLength) + buf.readUInt16LE(at + RECORD.typeLength) + (to === RECORD.noTo ? 0 : to);
}

/** FNV-1a over the key's lengths and bytes. */
function keyHash(buf: Buffer, at: number): number {
  let h = Math.imul(0x811c9dc5 ^ buf.readUInt16LE(at + RECORD.fromLength), 0x01000193);
  h = Math.imul(h ^ buf.readUInt16LE(at + RECORD.typeLength), 0x01000193);
  h = Math.imul(h ^ buf.readUInt16LE(at + RECORD.toLength), 0x01000193);
  for (let p = keyStart(buf, at), end = p + keyLength(buf, at); p < end; p++) h = Math.imul(h ^ buf[p]!, 0x01000193);
  return h >>> 0;
}

function sameKey(buf: Buffer, a: number, b: number): boolean {
  if (buf.readUInt16LE(a + RECORD.fromLength) !== buf.readUInt16LE(b + RECORD.fromLength)) return false;
  if (buf.readUInt16LE(a + RECORD.typeLength) !== buf.readUInt16LE(b + RECORD.typeLength)) return false;
  if (buf.readUInt16LE(a + RECORD.toLength) !== buf.readUInt16LE(b + RECORD.toLength)) return false;
  const start = keyStart(buf, a);
  const other = keyStart(buf, b);
  const length = keyLength(buf, a);
  return buf.compare(buf, other, other + length, start, start + length) === 0;
}

/** (ts, id) order of two records of one sender (whose ids differ: a sender's ids are unique). */
function compareAt(buf: Buffer, a: number, b: number): number {
  const ts = buf.readDoubleLE(a + RECORD.ts) - buf.readDoubleLE(b + RECORD.ts);
  if (ts !== 0) return ts;
  const ia = a + RECORD.strings;
  const ib = b + RECORD.strings;
  const la = buf.readUInt16LE(a + RECORD.idLength);
  const lb = buf.readUInt16LE(b + RECORD.idLength);
  // ASCII ids (the rule in practice) order the same as bytes and as strings; others are decoded,
  // since UTF-8 byte order and the port's UTF-16 order can differ.
  if (ascii(buf, ia, la) && ascii(buf, ib, lb)) return buf.compare(buf, ib, ib + lb, ia, ia + la);
  const x = text(buf, ia, la);
  const y = text(buf, ib, lb);
  return x < y ? -1 : x > y ? 1 : 0;
}

function ascii(buf: Buffer, start: number, length: number): boolean {
  for (let p = start; p < start + length; p++) if (buf[p]! >= 0x80) return false;
  return true;
}

function text(buf: Buffer, start: number, length: number): string {
  return buf.toString('utf8', start, start + length);
}

/** Builds the chunk of these records (ordinals, in order) and tells `chunkOf` where each went. */
function emit(buf: Buffer, offsets: number[], ordinals: number[], bytes: number, take: (chunk: Chunk) => number, chunkOf: Float64Array): void {
  const first = offsets[ordinals[0]!]!;
  let seqMin = Infinity;
  let expiresMin = Infinity;
  let tags: Set<string> | undefined;
  if (scratch.length < bytes) scratch = Buffer.allocUnsafeSlow(bytes);
  let to = 0;
  for (const ordinal of ordinals) {
    const at = offsets[ordinal]!;
    seqMin = Math.min(seqMin, buf.readDoubleLE(at + RECORD.seq));
    const expires = buf.readDoubleLE(at + RECORD.expires);
    if (expires < expiresMin) expiresMin = expires;
    const tagCount = buf.readUInt16LE(at + RECORD.tagCount);
    if (tagCount > 0) {
      let p = keyStart(buf, at) + keyLength(buf, at);
      for (let i = 0; i < tagCount; i++, p += 2 + buf.readUInt16LE(p)) (tags ??= new Set()).add(text(buf, p + 2, buf.readUInt16LE(p)));
    }
    const size = buf.readUInt32LE(at);
    // Through a plain view: Buffer.copy and Buffer.concat of subarrays allocate more per record.
    scratch.set(new Uint8Array(buf.buffer, buf.byteOffset + at, size), to);
    to += size;
  }
  const key = keyStart(buf, first);
  const fromLength = buf.readUInt16LE(first + RECORD.fromLength);
  const typeLength = buf.readUInt16LE(first + RECORD.typeLength);
  const toLength = buf.readUInt16LE(first + RECORD.toLength);
  const chunk = take({
    sender: text(buf, key, fromLength),
    type: text(buf, key + fromLength, typeLength),
    recipient: toLength === RECORD.noTo ? null : text(buf, key + fromLength + typeLength, toLength),
    tsMin: buf.readDoubleLE(first + RECORD.ts),
    tsMax: buf.readDoubleLE(offsets[ordinals[ordinals.length - 1]!]! + RECORD.ts),
    seqMin,
    expiresMin: expiresMin === Infinity ? null : expiresMin,
    tags: tags ? [...tags] : [],
    count: ordinals.length,
    data: scratch.subarray(0, bytes),
  });
  for (const ordinal of ordinals) chunkOf[ordinal] = chunk;
}
