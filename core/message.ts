import { randomFillSync } from 'node:crypto';
import { NitrogenError } from './errors.js';
import { nestsDeeperThan } from './json-depth.js';
import { parseIsoTime } from './time.js';

/**
 * The message envelope of docs/api.md, as stored, queried and forwarded.
 * Every field is already validated and normalized (ISO-8601 times in UTC, `from` set).
 */
export interface Message {
  id: string;
  type: string;
  from: string;
  to?: string;
  ts: string;
  body: unknown;
  tags?: string[];
  responseTo?: string[];
  expires?: string;
}

export interface MessageLimits {
  /** Largest encoded envelope in bytes (default 256 KiB). */
  maxMessageBytes: number;
  /** Most envelopes in one request or MQTT payload (default 1,000). */
  maxBatch: number;
  /** Deepest nesting of arrays and objects in a JSON payload or request body (default 64). */
  maxJsonDepth: number;
}

export const TYPE_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
/** Principal ids are MQTT topic levels too, so they exclude `/`, `+`, `#` and `$`. */
export const PRINCIPAL_ID_PATTERN = /^[A-Za-z0-9._-]{1,128}$/;
export const MESSAGE_ID_PATTERN = /^[A-Za-z0-9._:~-]{1,128}$/;
export const TAG_MAX_LENGTH = 64;
export const TAGS_MAX = 32;
export const RESPONSE_TO_MAX = 100;
const ENVELOPE_FIELDS = new Set(['id', 'type', 'from', 'to', 'ts', 'body', 'tags', 'responseTo', 'expires']);

// Ids are 32 hex digits: 12 of milliseconds and 4 of a per-millisecond counter, so ids sort by
// creation time, then 16 of fresh randomness (64 bits) per id. The random part is what makes an id
// impossible to name before the server hands it out: with predictable ids another sender could
// store its own message under a device's next id first, and `GET /messages/:id` (which answers
// with the first message stored under an id) would hand out the forgery. It also keeps ids from
// different processes apart.
let lastMs = 0;
let counter = 0;
let msPrefix = '';

// CSPRNG bytes drawn 4 KiB at a time and hex-encoded at once: one system call and one encoding
// per 512 ids instead of one per id.
const RANDOM_HEX_PER_ID = 16;
const randomPool = Buffer.allocUnsafe(4096);
let randomHexPool = '';
let poolOffset = 0;

function randomHex(): string {
  if (poolOffset === randomHexPool.length) {
    randomFillSync(randomPool);
    randomHexPool = randomPool.toString('hex');
    poolOffset = 0;
  }
  return randomHexPool.slice(poolOffset, (poolOffset += RANDOM_HEX_PER_ID));
}

/** A new time-ordered, unguessable message id; ids made later by this process sort after earlier ones. */
export function newMessageId(now = Date.now()): string {
  if (now > lastMs) {
    lastMs = now;
    counter = 0;
    msPrefix = '';
  } else if (++counter > 0xffff) {
    lastMs++;
    counter = 0;
    msPrefix = '';
  }
  // Thousands of ids share a millisecond at full load: format its digits once.
  if (msPrefix === '') msPrefix = lastMs.toString(16).padStart(12, '0');
  return msPrefix + (counter + 0x10000).toString(16).slice(1) + randomHex();
}

let isoMs = -1;
let isoText = '';

/** `new Date(ms).toISOString()`, formatted once per millisecond. */
function isoString(ms: number): string {
  if (ms !== isoMs) {
    isoMs = ms;
    isoText = new Date(ms).toISOString();
  }
  return isoText;
}

function invalid(field: string, message: string, index?: number): NitrogenError {
  const where = index === undefined ? field : `[${index}].${field}`;
  return new NitrogenError('NITROGEN_ERR_VALIDATION', `${where}: ${message}`, { details: { field: where } });
}

function isoTime(value: unknown, field: string, index?: number): string {
  const ms = parseIsoTime(value);
  if (Number.isNaN(ms)) throw invalid(field, 'must be an ISO-8601 time with Z or an offset, in years 1970-9999', index);
  return new Date(ms).toISOString();
}

function stringList(value: unknown, field: string, max: number, maxLength: number, index?: number): string[] {
  if (!Array.isArray(value) || value.length > max) throw invalid(field, `must be an array of at most ${max} strings`, index);
  for (const item of value) {
    // No commas: queries take lists of tags and ids as comma-separated values.
    if (typeof item !== 'string' || item.length === 0 || item.length > maxLength || item.includes(',')) {
      throw invalid(field, `must hold non-empty strings of at most ${maxLength} characters, without commas`, index);
    }
  }
  return value as string[];
}

/** What the transport knows about a message beyond its payload. */
export interface EnvelopeContext {
  /** The authenticated sender: `from` is always this principal. */
  sender: string;
  /** Type given by the topic (`devices/{id}/messages/{type}`); the envelope may not contradict it. */
  type?: string;
  /** Recipient given by the topic (`devices/{to}/commands/{type}`). */
  to?: string;
  now: number;
  /** Position in a batch, for error messages. */
  index?: number;
}

/** Where a transport takes the body from a payload as is (`…/messages/{type}`). */
export interface BodyContext extends EnvelopeContext {
  type: string;
  /** The payload text, already known to be valid JSON: it becomes the body without re-encoding. */
  bodyJson: string;
  body: unknown;
}

/**
 * The message for a payload that is its body: nothing to validate but the JSON, which the
 * caller parsed. The hot path of MQTT telemetry, so its JSON text is built by concatenation:
 * every field but the body matches a pattern without quotes or backslashes.
 */
export function bodyMessage(ctx: BodyContext): Message {
  const message: Message = { id: newMessageId(ctx.now), type: ctx.type, from: ctx.sender, ts: isoString(ctx.now), body: ctx.body };
  let json = `{"id":"${message.id}","type":"${message.type}","from":"${message.from}","ts":"${message.ts}","body":${ctx.bodyJson}`;
  if (ctx.to !== undefined) {
    message.to = ctx.to;
    json += `,"to":"${ctx.to}"`;
  }
  remember(message, json + '}');
  return message;
}

/**
 * Validates a client-supplied envelope and returns the normalized message.
 * Throws NITROGEN_ERR_VALIDATION naming the bad field, or NITROGEN_ERR_SENDER_MISMATCH
 * when `from` names anyone but the authenticated sender. Hand-written rather than a zod parse:
 * it runs for every message on the hot path and builds the message in the same pass. The schema
 * that documents it (core/schemas/envelope.ts) is held to the same answers by a fuzz test.
 */
export function parseEnvelope(input: unknown, ctx: EnvelopeContext): Message {
  const i = ctx.index;
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    const where = i === undefined ? 'message' : `[${i}]`;
    throw new NitrogenError('NITROGEN_ERR_VALIDATION', `${where}: must be a JSON object`, { details: { field: where } });
  }
  const raw = input as Record<string, unknown>;
  for (const key in raw) if (!ENVELOPE_FIELDS.has(key)) throw invalid(key, 'is not an envelope field', i);

  if (raw.from !== undefined && raw.from !== ctx.sender) {
    const where = i === undefined ? 'from' : `[${i}].from`;
    throw new NitrogenError('NITROGEN_ERR_SENDER_MISMATCH', `${where}: must be the authenticated principal '${ctx.sender}'`, { details: { field: where } });
  }
  let type = ctx.type;
  if (raw.type !== undefined) {
    if (typeof raw.type !== 'string' || !TYPE_PATTERN.test(raw.type)) throw invalid('type', 'must match [A-Za-z0-9._-]{1,64}', i);
    if (type !== undefined && raw.type !== type) throw invalid('type', `must be '${type}' as the topic says`, i);
    type = raw.type;
  }
  if (type === undefined) throw invalid('type', 'is required', i);

  let to = ctx.to;
  if (raw.to !== undefined) {
    if (typeof raw.to !== 'string' || !PRINCIPAL_ID_PATTERN.test(raw.to)) throw invalid('to', 'must be a principal id', i);
    if (to !== undefined && raw.to !== to) throw invalid('to', `must be '${to}' as the topic says`, i);
    to = raw.to;
  }
  let id: string;
  if (raw.id === undefined) id = newMessageId(ctx.now);
  else if (typeof raw.id === 'string' && MESSAGE_ID_PATTERN.test(raw.id)) id = raw.id;
  else throw invalid('id', 'must match [A-Za-z0-9._:~-]{1,128}', i);

  const message: Message = {
    id,
    type,
    from: ctx.sender,
    ts: raw.ts === undefined ? isoString(ctx.now) : isoTime(raw.ts, 'ts', i),
    body: raw.body === undefined ? null : raw.body,
  };
  if (to !== undefined) message.to = to;
  if (raw.tags !== undefined) message.tags = stringList(raw.tags, 'tags', TAGS_MAX, TAG_MAX_LENGTH, i);
  if (raw.responseTo !== undefined) message.responseTo = stringList(raw.responseTo, 'responseTo', RESPONSE_TO_MAX, 128, i);
  if (raw.expires !== undefined) message.expires = isoTime(raw.expires, 'expires', i);
  return message;
}

/**
 * Parses JSON from a transport. Invalid JSON is NITROGEN_ERR_MALFORMED_JSON; JSON nesting deeper
 * than `maxDepth` is NITROGEN_ERR_VALIDATION naming `limits.maxJsonDepth` (core/json-depth.ts
 * says why). Neither message quotes the payload: it may hold a secret, and messages are logged.
 */
export function parseJson(text: string, maxDepth: number): unknown {
  if (nestsDeeperThan(text, maxDepth)) {
    throw new NitrogenError('NITROGEN_ERR_VALIDATION', `payload nests arrays and objects more than ${maxDepth} deep (limits.maxJsonDepth)`, {
      details: { limit: 'limits.maxJsonDepth', max: maxDepth },
    });
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    // V8's message quotes the text around the fault ("Unexpected token 'p', "password=S"...");
    // only its position is kept.
    const position = /at position (\d+)/.exec((err as Error).message)?.[1];
    throw new NitrogenError('NITROGEN_ERR_MALFORMED_JSON', `payload is not valid JSON${position === undefined ? '' : ` (at character ${position})`}`);
  }
}

/**
 * The cached JSON text lives on the message under a non-enumerable symbol: a copy (`{...m}`)
 * or a deep comparison never sees it. A WeakMap cost about 1 µs more per message, most of it
 * in the garbage collector's handling of weak entries.
 */
const ENCODED = Symbol('nitrogen.encoded');

function remember(message: Message, text: string): string {
  Object.defineProperty(message, ENCODED, { value: text });
  return text;
}

/**
 * What a message's body is served as when it cannot be encoded: a body nested thousands deep,
 * stored before `limits.maxJsonDepth` was enforced, overflows JSON.stringify's stack. Serving
 * this in its place keeps every page, stream and sink batch holding the message well-formed.
 */
export const UNENCODABLE_BODY = Object.freeze({
  error: Object.freeze({
    code: 'NITROGEN_ERR_VALIDATION',
    message: 'this body nests too deeply to be encoded; it was stored before limits.maxJsonDepth was enforced',
    details: Object.freeze({ limit: 'limits.maxJsonDepth' }),
  }),
});

/** The JSON text of a message, computed once and shared by the store, subscribers and sinks. */
export function encodeMessage(message: Message): string {
  const cached = (message as { [ENCODED]?: string })[ENCODED];
  if (cached !== undefined) return cached;
  let text: string;
  try {
    text = JSON.stringify(message);
  } catch (err) {
    if (!(err instanceof RangeError)) throw err;
    text = JSON.stringify({ ...message, body: UNENCODABLE_BODY });
  }
  return remember(message, text);
}
