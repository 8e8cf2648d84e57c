import type { BackoffOptions } from './backoff.js';
import { badOption } from './errors.js';
import type { QueueLimits } from './outbox.js';
import type { Credential } from './tokens.js';

export interface QueueOptions {
  /**
   * A file that keeps the queue across restarts (Node only), created if missing. Without it the
   * queue is in memory: bounded the same way, but lost with the process.
   */
  file?: string;
  /** At most this many messages waiting (default 100,000). */
  maxMessages?: number;
  /** At most this many bytes of JSON waiting (default 32 MiB). */
  maxBytes?: number;
  /** When full: refuse the new message (`'reject'`, the default) or drop the oldest (`'drop-oldest'`). */
  whenFull?: 'reject' | 'drop-oldest';
  /** When a message counts as kept: `'always'` (fdatasync, the default), a number of ms (fdatasync at most that late), or `'never'`. */
  fsync?: 'always' | 'never' | number;
}

/**
 * TLS for `mqtts://` (Node). The server's certificate is always checked: against the system's
 * authorities, or `ca` for a private one. A client certificate (`cert`, `key`) from an authority
 * registered with the server authenticates the device in the handshake (docs/onboarding.md); the
 * secret or token still serves REST.
 */
export interface TlsOptions {
  /** PEM: the authorities that may sign the server's certificate (default: the system's). */
  ca?: string | string[];
  /** PEM: the device's certificate and its private key. */
  cert?: string;
  key?: string;
  /** The name the server's certificate must carry (default: the URL's host). */
  servername?: string;
}

export interface ConnectOptions {
  /** The REST base URL, e.g. `http://127.0.0.1:3000/api/v1`. */
  url: string;
  /** The principal's id. */
  id: string;
  /** Its secret (devices, apps) or password (users). */
  secret?: string;
  /** Or an access token, with `renewToken` to get a new one before it expires. */
  accessToken?: string;
  renewToken?: () => Promise<string>;
  /** The MQTT endpoint (`mqtt://host:1883`, `mqtts://host:8883`); default: what the server advertises at `GET /headwaiter`; `false`: none. Node only. */
  mqtt?: string | false;
  /** TLS for `mqtts://` (Node only). */
  tls?: TlsOptions;
  /** How messages are sent and subscriptions made: `'mqtt'` (Node's default when there is an endpoint) or `'rest'` (POST and SSE; the browser's). */
  transport?: 'mqtt' | 'rest';
  queue?: QueueOptions;
  /** Wait for the first connection and fail if it fails (default true); false: resolve at once and connect in the background, queueing meanwhile. */
  waitForServer?: boolean;
  /** MQTT client id (default: the principal id and a random suffix). */
  clientId?: string;
  keepaliveSeconds?: number;
  connectTimeoutMs?: number;
  requestTimeoutMs?: number;
  commandTimeoutMs?: number;
  reconnect?: Partial<BackoffOptions> & { resetAfterMs?: number };
  /** QoS 1 messages in flight at once over MQTT (default 32). */
  inflight?: number;
  /** Messages per `POST /messages` over REST (default 100; the server takes 1,000). */
  restBatch?: number;
  /** The largest message accepted for sending, as JSON (default 256 KiB, the server's default limit). */
  maxMessageBytes?: number;
  /** The largest MQTT packet accepted from the server (default 1 MiB). */
  maxPacketBytes?: number;
  /** The largest Server-Sent Event accepted, in characters (default 1 MiB). */
  maxEventBytes?: number;
}

export interface Settings {
  url: string;
  id: string;
  credential: Credential;
  mqtt: string | false | undefined;
  tls: TlsOptions | undefined;
  transport: 'mqtt' | 'rest' | undefined;
  queueFile: string | undefined;
  fsync: 'always' | 'never' | number;
  limits: QueueLimits;
  waitForServer: boolean;
  clientId: string;
  keepaliveSeconds: number;
  connectTimeoutMs: number;
  requestTimeoutMs: number;
  commandTimeoutMs: number;
  backoff: BackoffOptions;
  resetAfterMs: number;
  inflight: number;
  restBatch: number;
  maxMessageBytes: number;
  maxPacketBytes: number;
  maxEventBytes: number;
}

const MiB = 1024 * 1024;

function integer(option: string, value: unknown, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) throw badOption(option, `an integer from ${min} to ${max}`);
  return value;
}

function text(option: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) throw badOption(option, 'a non-empty string');
  return value;
}

/** Options checked once, with every default filled in; an error names the option. */
export function settings(o: ConnectOptions): Settings {
  if (typeof o !== 'object' || o === null) throw badOption('options', 'an object');
  const url = text('url', o.url).replace(/\/+$/, '');
  if (!/^https?:\/\//.test(url)) throw badOption('url', 'an http:// or https:// URL, e.g. http://127.0.0.1:3000/api/v1');
  const id = text('id', o.id);
  if (!/^[A-Za-z0-9._-]{1,128}$/.test(id)) throw badOption('id', 'a principal id, [A-Za-z0-9._-]{1,128}');
  if ((o.secret === undefined) === (o.accessToken === undefined)) throw badOption('secret', 'give either secret or accessToken');
  if (o.renewToken !== undefined && typeof o.renewToken !== 'function') throw badOption('renewToken', 'a function returning a promise of a token');
  const credential: Credential = o.secret !== undefined ? { secret: text('secret', o.secret) } : { accessToken: text('accessToken', o.accessToken), ...(o.renewToken ? { renew: o.renewToken } : {}) };
  if (o.mqtt !== undefined && o.mqtt !== false && !/^mqtts?:\/\//.test(String(o.mqtt))) throw badOption('mqtt', 'an mqtt:// or mqtts:// URL, or false');
  if (o.tls !== undefined) {
    if (typeof o.tls !== 'object' || o.tls === null) throw badOption('tls', 'an object: { ca, cert, key, servername }');
    if ((o.tls.cert === undefined) !== (o.tls.key === undefined)) throw badOption('tls', 'a client certificate needs both cert and key');
  }
  if (o.transport !== undefined && o.transport !== 'mqtt' && o.transport !== 'rest') throw badOption('transport', '"mqtt" or "rest"');
  const q = o.queue ?? {};
  if (q.whenFull !== undefined && q.whenFull !== 'reject' && q.whenFull !== 'drop-oldest') throw badOption('queue.whenFull', '"reject" or "drop-oldest"');
  const fsync = q.fsync ?? 'always';
  if (fsync !== 'always' && fsync !== 'never' && !(typeof fsync === 'number' && Number.isInteger(fsync) && fsync > 0)) throw badOption('queue.fsync', '"always", "never" or a number of milliseconds');
  const r = o.reconnect ?? {};
  const initialDelayMs = integer('reconnect.initialDelayMs', r.initialDelayMs, 500, 1, 3_600_000);
  return {
    url,
    id,
    credential,
    mqtt: o.mqtt,
    tls: o.tls,
    transport: o.transport,
    queueFile: q.file === undefined ? undefined : text('queue.file', q.file),
    fsync,
    limits: {
      maxMessages: integer('queue.maxMessages', q.maxMessages, 100_000, 1, 2 ** 31 - 1),
      maxBytes: integer('queue.maxBytes', q.maxBytes, 32 * MiB, 1, 2 ** 40),
      whenFull: q.whenFull ?? 'reject',
    },
    waitForServer: o.waitForServer ?? true,
    clientId: o.clientId === undefined ? `${id.slice(0, 100)}-${Math.random().toString(36).slice(2, 10)}` : text('clientId', o.clientId),
    keepaliveSeconds: integer('keepaliveSeconds', o.keepaliveSeconds, 60, 0, 65_535),
    connectTimeoutMs: integer('connectTimeoutMs', o.connectTimeoutMs, 30_000, 1, 3_600_000),
    requestTimeoutMs: integer('requestTimeoutMs', o.requestTimeoutMs, 30_000, 1, 3_600_000),
    commandTimeoutMs: integer('commandTimeoutMs', o.commandTimeoutMs, 30_000, 1, 2 ** 31 - 1),
    backoff: { initialDelayMs, maxDelayMs: integer('reconnect.maxDelayMs', r.maxDelayMs, Math.max(30_000, initialDelayMs), initialDelayMs, 86_400_000) },
    resetAfterMs: integer('reconnect.resetAfterMs', r.resetAfterMs, 10_000, 0, 86_400_000),
    inflight: integer('inflight', o.inflight, 32, 1, 65_000),
    restBatch: integer('restBatch', o.restBatch, 100, 1, 1000),
    maxMessageBytes: integer('maxMessageBytes', o.maxMessageBytes, 256 * 1024, 64, 2 ** 28),
    maxPacketBytes: integer('maxPacketBytes', o.maxPacketBytes, MiB, 64, 268_435_460),
    maxEventBytes: integer('maxEventBytes', o.maxEventBytes, MiB, 64, 2 ** 28),
  };
}
