import { compareRecords } from './matching.js';
import type { MessageRecord } from './record.js';
import { CHUNK_SPAN_MS } from './schema.js';

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
  /** Its messages, in (ts, id) order. */
  items: MessageRecord[];
  /** The records, concatenated; valid only until the next chunk is built (its space is reused). */
  data: Buffer;
}

/** Limits that keep a chunk cheap to load for a query or a `get`. */
export const CHUNK_MAX_MESSAGES = 512;
export const CHUNK_MAX_BYTES = 256 * 1024;

/**
 * Groups records into chunks, handing each to `take` in turn: one sender, type and recipient
 * per chunk (so every filter but time and tags holds for a whole chunk or none of it), sorted
 * by (ts, id), cut where the next record is CHUNK_SPAN_MS or more after the chunk's first, or
 * a size limit is reached.
 */
export function buildChunks(records: MessageRecord[], take: (chunk: Chunk) => void): void {
  const groups = new Map<string, MessageRecord[]>();
  for (const r of records) {
    const key = `${r.from}\u0000${r.type}\u0000${r.to ?? '\u0001'}`;
    let group = groups.get(key);
    if (!group) groups.set(key, (group = []));
    group.push(r);
  }
  for (const group of groups.values()) {
    group.sort(compareRecords);
    let start = 0;
    let bytes = 0;
    for (let i = 0; i < group.length; i++) {
      const r = group[i]!;
      const size = r.end - r.start;
      const full = i - start >= CHUNK_MAX_MESSAGES || bytes + size > CHUNK_MAX_BYTES || r.ts - group[start]!.ts >= CHUNK_SPAN_MS;
      if (i > start && full) {
        take(chunk(group.slice(start, i)));
        start = i;
        bytes = 0;
      }
      bytes += size;
    }
    take(chunk(group.slice(start)));
  }
}

/** Where chunks are assembled: fresh memory per chunk cost page faults and malloc time. */
let scratch = Buffer.allocUnsafeSlow(CHUNK_MAX_BYTES * 2);

function chunk(items: MessageRecord[]): Chunk {
  const first = items[0]!;
  let seqMin = first.seq;
  let expiresMin = Infinity;
  const tags = new Set<string>();
  let bytes = 0;
  for (let i = 0; i < items.length; i++) {
    const r = items[i]!;
    if (r.seq < seqMin) seqMin = r.seq;
    if (r.expires < expiresMin) expiresMin = r.expires;
    if (r.tags) for (const tag of r.tags) tags.add(tag);
    bytes += r.end - r.start;
  }
  if (scratch.length < bytes) scratch = Buffer.allocUnsafeSlow(bytes);
  let at = 0;
  for (const r of items) {
    const { buf } = r;
    // Through a plain view: Buffer.concat of subarrays costs about twice as much.
    scratch.set(new Uint8Array(buf.buffer, buf.byteOffset + r.start, r.end - r.start), at);
    at += r.end - r.start;
  }
  const data = scratch.subarray(0, bytes);
  return {
    sender: first.from, type: first.type, recipient: first.to, tsMin: first.ts, tsMax: items[items.length - 1]!.ts,
    seqMin, expiresMin: expiresMin === Infinity ? null : expiresMin, tags: [...tags], items, data,
  };
}
