import type { FeedRecord } from './ports/store.js';

/*
 * Feed records packed into one buffer, to hand a batch to a delivery worker (core/worker-sink.ts)
 * as one transferred ArrayBuffer rather than structured-cloned objects. Per record
 * (little-endian): u16 byte lengths of id, from, type, to (0xffff: none) · f64 ts · f64 expires
 * (NaN: none) · u32 JSON length · the four strings (UTF-8) · the envelope JSON.
 */
const HEADER = 2 * 4 + 8 * 2 + 4;
const NONE = 0xffff;

/** Packs records into a buffer that owns its whole ArrayBuffer (so it can be transferred). */
export function packRecords(records: readonly FeedRecord[]): Buffer {
  let size = 0;
  for (const r of records) size += HEADER + Buffer.byteLength(r.id) + Buffer.byteLength(r.from) + Buffer.byteLength(r.type) + (r.to === null ? 0 : Buffer.byteLength(r.to)) + r.json.length;
  const buf = Buffer.from(new ArrayBuffer(size));
  let at = 0;
  for (const r of records) {
    const strings = at + HEADER;
    let p = strings;
    p += buf.write(r.id, p);
    const idLength = p - strings;
    p += buf.write(r.from, p);
    const fromLength = p - strings - idLength;
    const typeAt = p;
    p += buf.write(r.type, p);
    const toAt = p;
    if (r.to !== null) p += buf.write(r.to, p);
    buf.writeUInt16LE(idLength, at);
    buf.writeUInt16LE(fromLength, at + 2);
    buf.writeUInt16LE(toAt - typeAt, at + 4);
    buf.writeUInt16LE(r.to === null ? NONE : p - toAt, at + 6);
    buf.writeDoubleLE(r.ts, at + 8);
    buf.writeDoubleLE(r.expires, at + 16);
    buf.writeUInt32LE(r.json.length, at + 24);
    p += r.json.copy(buf, p);
    at = p;
  }
  return buf;
}

/** The records of a packed buffer; their `json` are views of it. */
export function unpackRecords(buf: Buffer): FeedRecord[] {
  const records: FeedRecord[] = [];
  let at = 0;
  while (at < buf.length) {
    const idLength = buf.readUInt16LE(at);
    const fromLength = buf.readUInt16LE(at + 2);
    const typeLength = buf.readUInt16LE(at + 4);
    const toLength = buf.readUInt16LE(at + 6);
    const jsonLength = buf.readUInt32LE(at + 24);
    let p = at + HEADER;
    const id = buf.toString('utf8', p, (p += idLength));
    const from = buf.toString('utf8', p, (p += fromLength));
    const type = buf.toString('utf8', p, (p += typeLength));
    const to = toLength === NONE ? null : buf.toString('utf8', p, (p += toLength));
    records.push({ id, from, type, to, ts: buf.readDoubleLE(at + 8), expires: buf.readDoubleLE(at + 16), json: buf.subarray(p, p + jsonLength) });
    at = p + jsonLength;
  }
  return records;
}
