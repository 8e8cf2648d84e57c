import { Redis } from 'ioredis';
import { Counter, Gauge, type Registry as MetricsRegistry } from 'prom-client';
import { NitrogenError } from '../../core/errors.js';
import { OK, brief, type ComponentHealth } from '../../core/health.js';
import type { Logger } from '../../core/logger.js';
import { encodeMessage, type Message } from '../../core/message.js';
import type { Cluster, InstanceIdentity, RemoteBatch } from '../../core/ports/cluster.js';
import type { RedisBusOptions } from './options.js';
import { RedisLeases } from './redis-leases.js';
import { RedisSessionState } from './redis-session-state.js';

/** One batch on the messages channel: `{"i":instance,"r":run,"s":seq,"m":[envelope,…]}`. */
interface WireBatch {
  i: string;
  r: string;
  s: number;
  m: Message[];
}

/** One event on the events channel. */
interface WireEvent {
  i: string;
  r: string;
  c: string;
  d: unknown;
}

/**
 * The cluster bus on Redis (core/ports/cluster.ts): committed messages and events on Redis
 * pub/sub, persistent MQTT sessions in Redis keys (redis-session-state.ts).
 *
 * Messages are published in batches: everything committed in one turn of the event loop (or
 * `maxBatchBytes` of it) goes in one PUBLISH, each envelope encoded once (its encoding is kept
 * from the commit). Pub/sub delivers at most once: what is published while Redis is down, or
 * while `maxInFlightBytes` wait for an answer, is dropped and counted, never buffered (the
 * store has it). Commands and publishes share one connection, in order: a session queue
 * written before a batch is published is in Redis when another instance receives the batch.
 */
export class RedisBus implements Cluster {
  /** Commands and publishes; fails at once while disconnected (no offline queue). */
  private readonly redis: Redis;
  /** Subscribed to the channels (a subscribed connection takes no other command). */
  private readonly subscriber: Redis;
  readonly sessions: RedisSessionState;
  readonly leases: RedisLeases;
  private readonly messagesChannel: string;
  private readonly eventsChannel: string;
  private readonly messageListeners: Array<(batch: RemoteBatch) => void> = [];
  private readonly eventListeners: Array<(channel: string, data: unknown, from: string) => void> = [];
  private readonly reconnectListeners: Array<() => void> = [];

  private parts: string[] = [];
  private partsBytes = 0;
  private firstSeq = 0;
  private scheduled = false;
  private inFlightBytes = 0;
  private lastError?: string;
  private wasDown = false;
  private stopped = false;
  private readonly metrics: { published: Counter; received: Counter; dropped: Counter<'reason'>; up: Gauge };

  constructor(
    private readonly options: RedisBusOptions,
    private readonly instance: InstanceIdentity,
    private readonly logger: Logger,
    metrics: MetricsRegistry,
    /** Whether this instance delivers other instances' messages (it runs ingestion or consumption). */
    private readonly receiveMessages = true,
  ) {
    this.metrics = {
      published: new Counter({ name: 'nitrogen_cluster_published_messages_total', help: 'Committed messages published to the other instances', registers: [metrics] }),
      received: new Counter({ name: 'nitrogen_cluster_received_messages_total', help: 'Messages other instances committed, received for live delivery', registers: [metrics] }),
      dropped: new Counter({ name: 'nitrogen_cluster_dropped_messages_total', help: 'Committed messages not published to the other instances (stored all the same), by reason', labelNames: ['reason'], registers: [metrics] }),
      up: new Gauge({ name: 'nitrogen_cluster_bus_up', help: 'Whether the cluster bus (Redis) is reachable: 1 or 0', registers: [metrics] }),
    };
    const connection = {
      lazyConnect: true,
      enableOfflineQueue: false,
      connectTimeout: options.connectTimeoutMs,
      maxRetriesPerRequest: 0,
      retryStrategy: (attempt: number) => (this.stopped ? null : Math.min(attempt * 100, options.maxRetryDelayMs)),
    };
    this.redis = new Redis(options.url, connection);
    this.subscriber = new Redis(options.url, connection);
    this.messagesChannel = `${options.prefix}messages`;
    this.eventsChannel = `${options.prefix}events`;
    this.sessions = new RedisSessionState(this.redis, options.prefix);
    this.leases = new RedisLeases(this.redis, options.prefix);
    for (const [name, client] of [
      ['commands', this.redis],
      ['subscriber', this.subscriber],
    ] as const) {
      client.on('error', (err: Error) => this.failed(name, err));
      client.on('ready', () => this.ready());
      client.on('close', () => this.metrics.up.set(this.up ? 1 : 0));
    }
    this.subscriber.on('message', (channel: string, text: string) => this.received(channel, text));
  }

  private get up(): boolean {
    return this.redis.status === 'ready' && this.subscriber.status === 'ready';
  }

  async start(): Promise<void> {
    try {
      await Promise.all([this.redis.connect(), this.subscriber.connect()]);
      // An instance with no live subscribers (only the registry role) skips every batch.
      await this.subscriber.subscribe(...(this.receiveMessages ? [this.messagesChannel, this.eventsChannel] : [this.eventsChannel]));
      await this.sessions.load();
    } catch (err) {
      throw new NitrogenError('NITROGEN_ERR_UNAVAILABLE', `cluster.bus: cannot reach Redis at ${safeUrl(this.options.url)}: ${(err as Error).message}`, { cause: err });
    }
    this.metrics.up.set(1);
  }

  async stop(): Promise<void> {
    this.flush();
    this.stopped = true;
    // QUIT waits for the answers to what was sent; disconnect() would drop them.
    // eslint-disable-next-line @typescript-eslint/await-thenable -- disconnect() is immediate; only QUIT has answers to wait for
    await Promise.all([this.redis, this.subscriber].map((client) => (client.status === 'ready' ? client.quit().catch(() => client.disconnect()) : client.disconnect())));
  }

  publish(messages: readonly Message[], seq: number): void {
    if (!this.up) return this.drop(messages.length, 'disconnected');
    if (this.inFlightBytes > this.options.maxInFlightBytes) return this.drop(messages.length, 'backlog');
    // A batch names only its first number: one that does not follow the pending ones starts another.
    if (this.parts.length > 0 && seq !== this.firstSeq + this.parts.length) this.flush();
    if (this.parts.length === 0) this.firstSeq = seq;
    for (const message of messages) {
      const text = encodeMessage(message);
      this.parts.push(text);
      this.partsBytes += text.length;
    }
    if (this.partsBytes >= this.options.maxBatchBytes) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  private flush(): void {
    this.scheduled = false;
    const parts = this.parts;
    if (parts.length === 0) return;
    this.parts = [];
    this.partsBytes = 0;
    const payload = `{"i":${JSON.stringify(this.instance.id)},"r":${JSON.stringify(this.instance.run)},"s":${this.firstSeq},"m":[${parts.join(',')}]}`;
    const bytes = payload.length;
    this.inFlightBytes += bytes;
    this.redis.publish(this.messagesChannel, payload).then(
      () => {
        this.inFlightBytes -= bytes;
        this.metrics.published.inc(parts.length);
      },
      () => {
        this.inFlightBytes -= bytes;
        this.drop(parts.length, 'disconnected');
      },
    );
  }

  private drop(count: number, reason: 'disconnected' | 'backlog'): void {
    this.metrics.dropped.inc({ reason }, count);
  }

  onMessages(listener: (batch: RemoteBatch) => void): void {
    this.messageListeners.push(listener);
  }

  async broadcast(channel: string, data: unknown): Promise<void> {
    const event: WireEvent = { i: this.instance.id, r: this.instance.run, c: channel, d: data };
    try {
      await this.redis.publish(this.eventsChannel, JSON.stringify(event));
    } catch (err) {
      throw new NitrogenError('NITROGEN_ERR_UNAVAILABLE', `the cluster bus is unreachable: ${(err as Error).message}`, { cause: err });
    }
  }

  onEvent(listener: (channel: string, data: unknown, from: string) => void): void {
    this.eventListeners.push(listener);
  }

  /** The bus came back after an outage: what was learned from events may be stale. */
  onReconnect(listener: () => void): void {
    this.reconnectListeners.push(listener);
  }

  private received(channel: string, text: string): void {
    let parsed: WireBatch | WireEvent;
    try {
      parsed = JSON.parse(text) as WireBatch | WireEvent;
    } catch {
      this.logger.warn({ channel, bytes: text.length }, 'unreadable cluster bus message ignored');
      return;
    }
    if (parsed.i === this.instance.id && parsed.r === this.instance.run) return; // our own
    if (channel === this.messagesChannel) {
      const batch = parsed as WireBatch;
      if (!Array.isArray(batch.m) || typeof batch.s !== 'number') return;
      this.metrics.received.inc(batch.m.length);
      const remote: RemoteBatch = { instance: batch.i, run: batch.r, seq: batch.s, messages: batch.m };
      for (const listener of this.messageListeners) listener(remote);
    } else if (channel === this.eventsChannel) {
      const event = parsed as WireEvent;
      for (const listener of this.eventListeners) {
        try {
          listener(event.c, event.d, event.i);
        } catch (err) {
          this.logger.error({ err, channel: event.c }, 'a cluster event listener failed');
        }
      }
    }
  }

  private failed(connection: string, err: Error): void {
    const message = (err as NodeJS.ErrnoException).code ?? err.message;
    this.metrics.up.set(0);
    // Once per outage: a reconnecting client reports every attempt.
    if (this.lastError === message) return;
    this.lastError = message;
    this.wasDown = true;
    this.logger.warn({ connection, err: message }, 'cluster bus (Redis) unreachable; live delivery to other instances is paused');
  }

  private ready(): void {
    if (!this.up) return;
    this.metrics.up.set(1);
    this.lastError = undefined;
    if (!this.wasDown) return;
    this.wasDown = false;
    this.logger.info('cluster bus (Redis) reachable again');
    this.sessions.reloadScripts();
    for (const listener of this.reconnectListeners) listener();
  }

  health(): ComponentHealth {
    if (this.up) return OK;
    return {
      status: 'down',
      reason: brief(`Redis at ${safeUrl(this.options.url)} unreachable (${this.lastError ?? this.redis.status}): messages are still acknowledged and stored, live delivery to other instances and shared MQTT sessions wait for it`),
    };
  }
}

/** The URL without its password, for logs and health reasons. */
function safeUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'an invalid URL';
  }
}
