// Policies: everything that shapes a connection, in one object. Named presets
// carry what each broker expects; user overrides of any field are merged on
// top (deeply, so `{ sender: { maxQueued: 10 } }` changes only that field).
import type { ConnectionOptions as TlsOptions } from 'node:tls';
import type { Fields } from './performatives.js';
import type { SaslMechanism } from './sasl.js';
import type { Source, Target } from './messaging.js';

export interface ReconnectPolicy {
  /** Reconnect after the socket drops, an idle timeout, or amqp:connection:forced. */
  enabled: boolean;
  /** Delay before the first attempt; each further attempt multiplies it, up to maxDelay. */
  initialDelay: number;
  maxDelay: number;
  multiplier: number;
  /** Randomise each delay by ±jitter (0..1) so many clients do not return in step. */
  jitter: number;
  /** Attempts after a drop before giving up (Infinity: never). */
  maxAttempts: number;
  /**
   * How long a connection must stay up (connected, sessions begun) before the
   * backoff starts over from initialDelay; a peer that breaks sooner sees it grow.
   */
  resetAfter: number;
}

export interface SenderPolicy {
  /** §2.8.2: 'unsettled' waits for the peer's outcome; 'settled' is fire-and-forget. */
  settleMode: 'unsettled' | 'settled' | 'mixed';
  /** §2.8.3, requested of the receiving peer. */
  rcvSettleMode: 'first' | 'second';
  /** Sends waiting for credit or for the connection; beyond it send() rejects with ERR_AMQP_SEND_QUEUE_FULL. */
  maxQueued: number;
  /** What happens to sends in flight (sent, not settled) when the connection drops: re-send them or reject them. */
  unsettledOnReconnect: 'resend' | 'fail';
  /** Extra target fields for every attach (capabilities, durability...). */
  target: Partial<Target>;
  /** The message-format of sends that do not say (§2.7.5; 0 = AMQP). */
  messageFormat: number;
}

export interface ReceiverPolicy {
  /** Link credit granted to the peer. */
  credit: number;
  /** 'auto': top credit back up as deliveries are consumed; 'manual': only receiver.addCredit(). */
  creditStrategy: 'auto' | 'manual';
  /** With 'auto', refill once outstanding credit falls to this fraction of `credit`. */
  refillAt: number;
  rcvSettleMode: 'first' | 'second';
  /** Largest message we reassemble; larger ones detach the link with amqp:link:message-size-exceeded. */
  maxMessageSize: number;
  source: Partial<Source>;
}

export interface ClientPolicy {
  name: string;
  /** §2.7.1 open fields. An empty containerId means a random one per connection. */
  containerId: string;
  /** Sent in open (virtual host); empty means the URL's host. */
  hostname: string;
  maxFrameSize: number;
  channelMax: number;
  /** Our idle-time-out in ms (§2.4.5): the peer must send something this often; 0 disables. */
  idleTimeout: number;
  offeredCapabilities: string[];
  desiredCapabilities: string[];
  properties: Fields;
  /** §2.5.6 session windows, in transfer frames. */
  incomingWindow: number;
  outgoingWindow: number;
  /** Connecting, in ms: TCP/TLS, SASL, open and the sessions' begin (the first time and after a drop). */
  connectTimeout: number;
  /** Attach and detach round trips, in ms. */
  operationTimeout: number;
  /** SASL: a mechanism, 'auto' (PLAIN with URL credentials, else ANONYMOUS), or 'none' to skip the SASL layer. */
  sasl: SaslMechanism | 'auto' | 'none';
  /** TLS options for amqps:// URLs (ca, cert, key, servername, rejectUnauthorized...). */
  tls: TlsOptions;
  reconnect: ReconnectPolicy;
  sender: SenderPolicy;
  receiver: ReceiverPolicy;
}

type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? (T[K] extends unknown[] ? T[K] : DeepPartial<T[K]>) : T[K] };
export type PolicyOverrides = DeepPartial<ClientPolicy>;

const isPlain = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && Object.getPrototypeOf(v) === Object.prototype;

function merge<T>(base: T, over: unknown): T {
  if (!isPlain(base) || !isPlain(over)) return (over === undefined ? base : over) as T;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v !== undefined) out[k] = isPlain(out[k]) && isPlain(v) ? merge(out[k], v) : v;
  }
  return out as T;
}

const Default: ClientPolicy = {
  name: 'default',
  containerId: '',
  hostname: '',
  maxFrameSize: 256 * 1024,
  channelMax: 255,
  idleTimeout: 60_000,
  offeredCapabilities: [],
  desiredCapabilities: [],
  properties: { product: 'nitrogen' },
  incomingWindow: 2048,
  outgoingWindow: 2048,
  connectTimeout: 30_000,
  operationTimeout: 30_000,
  sasl: 'auto',
  tls: {},
  reconnect: { enabled: true, initialDelay: 100, maxDelay: 30_000, multiplier: 2, jitter: 0.2, maxAttempts: Infinity, resetAfter: 10_000 },
  sender: {
    settleMode: 'unsettled',
    rcvSettleMode: 'first',
    maxQueued: 10_000,
    unsettledOnReconnect: 'resend',
    target: {},
    messageFormat: 0,
  },
  receiver: {
    credit: 100,
    creditStrategy: 'auto',
    refillAt: 0.5,
    rcvSettleMode: 'first',
    maxMessageSize: 64 * 1024 * 1024,
    source: {},
  },
};

/** Builds a policy from a base and overrides of any field. */
function derive(base: ClientPolicy, overrides: PolicyOverrides = {}): ClientPolicy {
  return merge(base, overrides);
}

export const Policy = {
  Default,
  /**
   * Azure Event Hubs: TLS on 5671 (use amqps://), SAS key name/value as SASL
   * PLAIN user/password, frames of 64 KiB, 1 MiB messages; batches are sent
   * raw with message-format 0x80013700 (see sender.sendRaw).
   */
  EventHub: derive(Default, { name: 'eventhub', maxFrameSize: 65536, channelMax: 4999, idleTimeout: 120_000, incomingWindow: 5000, outgoingWindow: 5000, receiver: { maxMessageSize: 1024 * 1024 } }),
  /** Azure Service Bus: same transport dialect as Event Hubs. */
  ServiceBus: derive(Default, { name: 'servicebus', maxFrameSize: 65536, channelMax: 4999, idleTimeout: 120_000, incomingWindow: 5000, outgoingWindow: 5000, receiver: { maxMessageSize: 1024 * 1024 } }),
  /** Qpid brokers and the Proton broker: spec defaults. */
  Qpid: derive(Default, { name: 'qpid', maxFrameSize: 65536 }),
  /**
   * RabbitMQ 3.x with the rabbitmq_amqp1_0 plugin: PLAIN credentials, 128 KiB
   * frames (its frame_max), addresses /queue/NAME (declared on attach),
   * /exchange/NAME/KEY, /amq/queue/NAME (must exist). The 3.x plugin applies
   * a flow's link-credit from its own delivery-count rather than ours
   * (§2.6.7), so credit granted while transfers are in flight overshoots:
   * this preset refills only once credit and buffer are used up.
   */
  RabbitMQ: derive(Default, { name: 'rabbitmq', maxFrameSize: 131072, receiver: { refillAt: 0 } }),
  /**
   * ActiveMQ Classic 5.x: what the broker announces in its open, 128 KiB
   * frames (131,072 bytes) and a 15 s idle-time-out (ours, asked of it, the same).
   */
  ActiveMQ: derive(Default, { name: 'activemq', maxFrameSize: 131_072, idleTimeout: 15_000 }),
  derive,
};
