import { z } from 'zod';
import type { Logger } from '../../core/logger.js';
import type { Message } from '../../core/message.js';
import { definePlugin } from '../../core/plugin.js';
import type { Sink } from '../../core/ports/sink.js';
import type { FeedRecord } from '../../core/ports/store.js';
import { Client, parseUrl, Policy, Writer, type ClientPolicy, type Sender } from '@nitrogen/amqp';
import { Downstream, type Link } from './downstream.js';
import { encodeRecord, toAmqpMessage } from './mapping.js';
import { loadTls, sendTimeoutMs, tlsOptions } from './options.js';

const PRESETS = { default: Policy.Default, qpid: Policy.Qpid, rabbitmq: Policy.RabbitMQ, activemq: Policy.ActiveMQ, servicebus: Policy.ServiceBus, eventhub: Policy.EventHub } as const;

function amqpUrl(value: string): boolean {
  try {
    parseUrl(value);
    return true;
  } catch {
    return false;
  }
}

/** Options of the `amqp` sink (docs/sinks.md). `url` holds the password: it is never logged. */
export const AmqpSinkOptions = z.strictObject({
  /** amqp://user:pass@host:5672 (SASL PLAIN) or amqp://host (ANONYMOUS); amqps:// for TLS. */
  url: z.string().refine(amqpUrl, { message: 'must be an amqp:// or amqps:// URL' }),
  /** Target address: a queue or topic (RabbitMQ 3.x: /queue/NAME or /exchange/NAME/KEY). */
  address: z.string().min(1),
  /** A policy preset of the AMQP client (docs/amqp.md, "Policies")... */
  policy: z.enum(['default', 'qpid', 'rabbitmq', 'activemq', 'servicebus', 'eventhub']).default('default'),
  /** ...and overrides of any of its fields, e.g. { "maxFrameSize": 65536 }. */
  overrides: z.record(z.string(), z.unknown()).default({}),
  tls: tlsOptions,
  /** Header durable (AMQP 1.0 §3.2.1): brokers keep the message on disk. */
  durable: z.boolean().default(true),
  sendTimeoutMs,
});
export type AmqpSinkOptions = z.output<typeof AmqpSinkOptions>;

/**
 * Forwards each message to one address of any AMQP 1.0 broker, as the mapping of
 * `mapping.ts` says. A batch's messages are sent concurrently on one link; `send` resolves
 * once the broker accepted every one (AMQP 1.0 §3.4.2) and otherwise reports the first that
 * was not (outcomes.ts). The connection is opened by `start()` in the background and again
 * whenever it was lost; an unreachable broker delays delivery, it never fails the start.
 */
export class AmqpSink implements Sink {
  private readonly downstream: Downstream;
  private readonly policy: ClientPolicy;
  /** Encodes one record at a time; `toBuffer` copies out. */
  private readonly writer = new Writer(4096);

  constructor(
    readonly name: string,
    private readonly options: AmqpSinkOptions,
    logger: Logger,
  ) {
    const endpoint = parseUrl(options.url);
    this.policy = Policy.derive(Policy.derive(PRESETS[options.policy], options.overrides), {
      tls: loadTls(options.tls),
      // Reconnection is the sink's (downstream.ts): fail in-flight sends at once.
      reconnect: { enabled: false },
      sender: { unsettledOnReconnect: 'fail' },
    });
    this.downstream = new Downstream(() => this.open(), `${endpoint.tls ? 'amqps' : 'amqp'}://${endpoint.host}:${endpoint.port} ${options.address}`, logger);
  }

  private async open(): Promise<Link> {
    const connection = await Client.connect(this.options.url, this.policy);
    try {
      return { connection, sender: await connection.createSender(this.options.address) };
    } catch (err) {
      await connection.close().catch(() => undefined);
      throw err;
    }
  }

  async start(): Promise<void> {
    this.downstream.warmUp();
  }

  send(batch: Message[]): Promise<void> {
    return this.sendMapped(batch, (m, sender) => sender.send(toAmqpMessage(m, this.options.durable)));
  }

  sendRecords(batch: FeedRecord[]): Promise<void> {
    // Records are encoded straight into the bytes of their transfer (mapping.ts, encodeRecord).
    return this.sendMapped(batch, (r, sender) => {
      const w = this.writer;
      w.reset();
      encodeRecord(w, r, this.options.durable);
      return sender.sendRaw(w.toBuffer());
    });
  }

  private async sendMapped<T extends { id: string }>(batch: T[], sendOne: (item: T, sender: Sender) => Promise<unknown>): Promise<void> {
    if (batch.length === 0) return;
    const { sender } = await this.downstream.forBatch(this.name);
    const failures: unknown[] = new Array(batch.length);
    const sends = batch.map((m, i) =>
      sendOne(m, sender).then(
        () => undefined,
        (err: unknown) => {
          failures[i] = err ?? new Error('send failed');
        },
      ),
    );
    await this.downstream.settle(
      this.name,
      sends,
      this.options.sendTimeoutMs,
      batch.map((m) => m.id),
      failures,
    );
  }

  async stop(): Promise<void> {
    await this.downstream.close();
  }
}

export const amqpSinkPlugin = definePlugin({
  name: 'amqp',
  kind: 'sink',
  deliveryWorker: { module: new URL('./index.js', import.meta.url).href, exportName: 'amqpSinkPlugin' },
  description: 'forwards messages to an AMQP 1.0 broker (Qpid, RabbitMQ, ActiveMQ, ...)',
  options: AmqpSinkOptions,
  create: ({ name, logger }, options) => new AmqpSink(name, options, logger),
});
