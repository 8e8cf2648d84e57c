import { crc32 } from 'node:zlib';
import { ClientError } from '../errors.js';
import type { StoredRecord } from '../queue/queue-store.js';

/**
 * The queue file: an 8-byte header, then records appended one after another.
 *
 *   record = length (u32 BE, of the payload) | crc32 (u32 BE, of kind and payload) | kind (u8) | payload
 *   kind 1, a message: id length (u8) | id | the envelope as JSON (UTF-8)
 *   kind 2, removed:   u32 BE, how many message records from the start of the file are gone
 *
 * A message is removed by appending a `removed` record (only the last one counts), never by
 * rewriting: appends are all the file sees while the device runs. A crash can leave a torn or
 * half-written record only at the end; it is cut off when the file is opened. When everything
 * in the file is removed it is truncated, and when removed records take more room than live
 * ones it is rewritten with only the live ones (to a new file, renamed over the old one).
 */
export const HEADER = Buffer.from('N2QUEUE1', 'latin1');
export const RECORD_HEAD = 9;
const MESSAGE = 1;
const REMOVED = 2;

function encodeRecord(kind: number, payload: Buffer): Buffer {
  const out = Buffer.allocUnsafe(RECORD_HEAD + payload.length);
  out.writeUInt32BE(payload.length, 0);
  out.writeUInt32BE(crc32(payload, crc32(Buffer.of(kind))), 4);
  out[8] = kind;
  payload.copy(out, RECORD_HEAD);
  return out;
}

export function messageRecord(r: StoredRecord): Buffer {
  const id = Buffer.from(r.id, 'latin1'); // ids are ASCII: [A-Za-z0-9._:~-]
  const payload = Buffer.allocUnsafe(1 + id.length + r.bytes);
  payload[0] = id.length;
  id.copy(payload, 1);
  payload.write(r.json, 1 + id.length, 'utf8');
  return encodeRecord(MESSAGE, payload);
}

export function removedRecord(count: number): Buffer {
  const payload = Buffer.allocUnsafe(4);
  payload.writeUInt32BE(count, 0);
  return encodeRecord(REMOVED, payload);
}

/** Reads a queue file: its live records, and where its undamaged part ends. */
export function parse(file: Buffer, path: string): { records: StoredRecord[]; goodLength: number } {
  if (file.length < HEADER.length || !file.subarray(0, HEADER.length).equals(HEADER)) {
    throw new ClientError('NITROGEN_CLIENT_BAD_OPTIONS', `queue.file: ${path} is not a Nitrogen queue file`, { option: 'queue.file' });
  }
  const messages: StoredRecord[] = [];
  let removed = 0;
  let at = HEADER.length;
  while (at + RECORD_HEAD <= file.length) {
    const length = file.readUInt32BE(at);
    const end = at + RECORD_HEAD + length;
    if (end > file.length) break;
    const kind = file[at + 8]!;
    const payload = file.subarray(at + RECORD_HEAD, end);
    if (crc32(payload, crc32(Buffer.of(kind))) !== file.readUInt32BE(at + 4)) break;
    if (kind === MESSAGE) {
      const idLength = payload[0]!;
      const json = payload.toString('utf8', 1 + idLength);
      messages.push({ id: payload.toString('latin1', 1, 1 + idLength), json, bytes: payload.length - 1 - idLength });
    } else if (kind === REMOVED && length === 4) removed = payload.readUInt32BE(0);
    else break;
    at = end;
  }
  return { records: messages.slice(removed), goodLength: at };
}

export function ioError(path: string, what: string, cause: unknown): ClientError {
  return new ClientError('NITROGEN_CLIENT_QUEUE_IO', `queue file ${path}: ${what}: ${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message}`, { path }, undefined, { cause });
}
