import { ClientError } from './errors.js';
import { utf8Length } from './utf8.js';

/** A message as the server stores and delivers it (the normalized envelope of docs/api.md). */
export interface Message<Body = unknown> {
  id: string;
  type: string;
  from: string;
  to?: string;
  ts: string;
  body: Body;
  tags?: string[];
  responseTo?: string[];
  expires?: string;
}

/** What a caller sends: `type` is required; `from` is always the session's principal. */
export interface OutgoingMessage<Body = unknown> {
  type: string;
  body?: Body;
  /** An idempotency key of this sender; the client makes one when absent. */
  id?: string;
  to?: string;
  /** ISO-8601 with `Z` or an offset, or a Date; the time the client took the sample. */
  ts?: string | Date;
  tags?: string[];
  responseTo?: string[];
  expires?: string | Date;
}

// The server's rules (docs/api.md, "The message envelope"), checked before a message is queued:
// a message the server would refuse must not sit in a durable queue, sent again at every reconnect.
const TYPE = /^[A-Za-z0-9._-]{1,64}$/;
const ID = /^[A-Za-z0-9._:~-]{1,128}$/;
const PRINCIPAL_ID = /^[A-Za-z0-9._-]{1,128}$/;
const FIELDS = new Set(['type', 'body', 'id', 'to', 'ts', 'tags', 'responseTo', 'expires']);
/** Characters a time may hold that JSON never escapes: such a time is quoted as it is. */
const PLAIN_TIME = /^[0-9TZ:.,+ -]{10,40}$/;

function invalid(field: string, rule: string): ClientError {
  return new ClientError('NITROGEN_ERR_VALIDATION', `${field}: ${rule}`, { field });
}

function time(value: unknown, field: string): string {
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) throw invalid(field, 'an invalid Date');
    return value.toISOString();
  }
  // The server reads the full rule (docs/api.md, "Times"); here only what is surely wrong.
  if (typeof value !== 'string' || value.length > 40 || !/^\d{4}-\d{2}-\d{2}/.test(value)) throw invalid(field, 'an ISO-8601 time or a Date');
  return value;
}

function strings(value: unknown, field: string, max: number, maxLength: number): string[] {
  if (!Array.isArray(value) || value.length > max) throw invalid(field, `an array of at most ${max} strings`);
  for (const s of value) {
    if (typeof s !== 'string' || s.length === 0 || s.length > maxLength || s.includes(',')) throw invalid(field, `non-empty strings of at most ${maxLength} characters, without commas`);
  }
  return value as string[];
}

/** The id to send `message` under: its own, checked, or a new one. */
export function outgoingId(message: OutgoingMessage, newId: () => string): string {
  if (message.id === undefined) return newId();
  if (typeof message.id !== 'string' || !ID.test(message.id)) throw invalid('id', '[A-Za-z0-9._:~-]{1,128}');
  return message.id;
}

/**
 * The envelope to send under `id`, as JSON. `ts` is the time of the call unless given, so the
 * stored time is when the device took the sample, not when a queued message finally reached
 * the server. The JSON is written here, field by field: only the body (and strings that may need
 * escaping) go through JSON.stringify, not an envelope object made for the purpose.
 */
export function encodeOutgoing(message: OutgoingMessage, id: string): string {
  if (typeof message !== 'object' || message === null) throw invalid('message', 'an object');
  for (const key in message) if (!FIELDS.has(key)) throw invalid(key, 'unknown field (from is always the session principal)');
  const { type } = message;
  if (typeof type !== 'string' || !TYPE.test(type)) throw invalid('type', '[A-Za-z0-9._-]{1,64}');
  // Ids, types and principal ids match patterns without anything JSON escapes.
  const ts = message.ts === undefined ? new Date().toISOString() : time(message.ts, 'ts');
  let json = `{"id":"${id}","type":"${type}","ts":${PLAIN_TIME.test(ts) ? `"${ts}"` : JSON.stringify(ts)}`;
  if (message.to !== undefined) {
    if (typeof message.to !== 'string' || !PRINCIPAL_ID.test(message.to)) throw invalid('to', 'a principal id');
    json += `,"to":"${message.to}"`;
  }
  if (message.tags !== undefined) json += `,"tags":${JSON.stringify(strings(message.tags, 'tags', 32, 64))}`;
  if (message.responseTo !== undefined) json += `,"responseTo":${JSON.stringify(strings(message.responseTo, 'responseTo', 100, 128))}`;
  if (message.expires !== undefined) json += `,"expires":${JSON.stringify(time(message.expires, 'expires'))}`;
  if (message.body !== undefined) {
    let body: string | undefined;
    try {
      body = JSON.stringify(message.body);
    } catch (err) {
      throw invalid('body', `not serializable as JSON (${(err as Error).message})`);
    }
    // undefined: a function or a symbol, which JSON cannot say.
    if (body === undefined) throw invalid('body', 'not serializable as JSON');
    json += `,"body":${body}`;
  }
  return json + '}';
}

/** Its size in UTF-8, refused beyond `maxMessageBytes` as the server would refuse it. */
export function checkedSize(json: string, maxMessageBytes: number): number {
  const bytes = utf8Length(json);
  if (bytes > maxMessageBytes) {
    throw new ClientError('NITROGEN_ERR_PAYLOAD_TOO_LARGE', `the message takes ${bytes} bytes as JSON, more than maxMessageBytes (${maxMessageBytes})`, { limit: 'maxMessageBytes' });
  }
  return bytes;
}

/** The reply type for a command type: `unlock` → `unlock-result`, within the 64 characters a type may have. */
export function replyType(commandType: string): string {
  return commandType.length <= 57 ? `${commandType}-result` : 'result';
}
