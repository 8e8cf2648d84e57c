import { Counter, type Registry as MetricsRegistry } from 'prom-client';
import { z } from 'zod';
import type { Logger } from '../../core/logger.js';
import type { Message } from '../../core/message.js';
import { definePlugin } from '../../core/plugin.js';
import type { Sink } from '../../core/ports/sink.js';
import type { FeedRecord } from '../../core/ports/store.js';
import { Client, Policy, Sasl, type ClientPolicy, type Connection, type Sender } from '@nitrogen/amqp';
import { CbsClient, sasToken } from './cbs.js';
import { parseConnectionString, type HubAddress } from './connection-string.js';
import { Downstream } from './downstream.js';
import { BATCH_FORMAT, packEvents } from './hub-batches.js';
import { loadTls, sendTimeoutMs, tlsOptions } from './options.js';
import { Unsendable } from './outcomes.js';

/** Event Hubs' largest message on the Standard tier, used when the link does not say. */
const DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024;

/** Options of the `eventhubs` sink (docs/sinks.md). `connectionString` holds the key: it is never logged. */
export const EventHubsSinkOptions = z
  .strictObject({
    connectionString: z.string().transform((text, ctx): HubAddress => {
      const parsed = parseConnectionString(text);
      if ('problems' in parsed) {
        for (const message of parsed.problems) ctx.addIssue({ code: 'custom', message });
        return z.NEVER;
      }
      return parsed;
    }),
    /** Send to this partition only (target `<hub>/Partitions/<id>`); events then carry no partition key. */
    partitionId: z
      .string()
      .regex(/^[0-9A-Za-z_-]{1,64}$/)
      .optional(),
    /** `from`: the sending device's id is the partition key, keeping each device's events in order. `none`: the hub spreads events. */
    partitionKey: z.enum(['from', 'none']).default('from'),
    /** Lifetime of each SAS token; it is renewed after three quarters of it. */
    tokenLifetimeSeconds: z
      .number()
      .int()
      .min(2)
      .max(7 * 24 * 3600)
      .default(3600),
    /** Cap on a batch message's size; the link's max-message-size (or 1 MiB) when absent or larger. */
    maxBatchBytes: z.number().int().min(1024).optional(),
    tls: tlsOptions,
    sendTimeoutMs,
  })
  .transform(({ connectionString, ...rest }) => ({ hub: connectionString, ...rest }));
export type EventHubsSinkOptions = z.output<typeof EventHubsSinkOptions>;

interface HubLink {
  connection: Connection;
  sender: Sender;
  maxBytes: number;
}

/** Token renewals per sink and outcome, beside the runner's metrics. */
function renewalCounter(registry: MetricsRegistry): Counter<'sink' | 'outcome'> {
  const name = 'nitrogen_sink_token_renewals_total';
  return (registry.getSingleMetric(name) as Counter<'sink' | 'outcome'> | undefined) ?? new Counter({ name, help: 'CBS token renewals of Event Hubs sinks', labelNames: ['sink', 'outcome'], registers: [registry] });
}

/**
 * Forwards messages to an Azure event hub. It connects with SASL ANONYMOUS, puts a SAS token
 * for the sender's audience on `$cbs` (cbs.ts) before attaching, renews it after three
 * quarters of its lifetime, and sends each `send`'s messages as batch messages filled up to
 * the link's max-message-size, grouped by partition key (hub-batches.ts). `send` resolves once
 * the hub accepted every batch message; a refused one fails its events (outcomes.ts).
 */
export class EventHubsSink implements Sink {
  private readonly downstream: Downstream<HubLink>;
  private readonly policy: ClientPolicy;
  private readonly target: string;

  constructor(
    readonly name: string,
    private readonly options: EventHubsSinkOptions,
    private readonly logger: Logger,
    private readonly renewals: Counter<'sink' | 'outcome'>,
  ) {
    const { hub } = options;
    this.target = options.partitionId === undefined ? hub.hub : `${hub.hub}/Partitions/${options.partitionId}`;
    this.policy = Policy.derive(Policy.EventHub, {
      // Credentials go in the CBS token, not in SASL (protocol guide, "Claims-based authorization").
      sasl: Sasl.anonymous(),
      hostname: hub.host,
      tls: loadTls(options.tls),
      reconnect: { enabled: false },
      sender: { unsettledOnReconnect: 'fail' },
    });
    this.downstream = new Downstream(() => this.open(), `${hub.tls ? 'amqps' : 'amqp'}://${hub.host}:${hub.port} ${this.target}`, logger);
  }

  /** The token audience: the endpoint and the target, as the Azure SDKs build it. */
  private get audience(): string {
    return `${this.options.hub.endpoint}${this.target}`;
  }

  private async open(): Promise<HubLink> {
    const { hub } = this.options;
    const connection = await Client.connect(`${hub.tls ? 'amqps' : 'amqp'}://${hub.host}:${hub.port}`, this.policy);
    try {
      const cbs = await CbsClient.open(connection, this.policy.operationTimeout);
      const first = this.token();
      await cbs.putToken(this.audience, first.token);
      const sender = await connection.createSender(this.target);
      this.scheduleRenewal(connection, cbs, first.expiresAt);
      const linkMax = Number(sender.remote?.maxMessageSize ?? 0) || DEFAULT_MAX_MESSAGE_BYTES;
      return { connection, sender, maxBytes: Math.min(linkMax, this.options.maxBatchBytes ?? linkMax) };
    } catch (err) {
      await connection.close().catch(() => undefined);
      throw err;
    }
  }

  /** A token for the audience and when it expires (ms); `se` is in whole seconds. */
  private token(): { token: string; expiresAt: number } {
    const { keyName, key } = this.options.hub;
    const expiry = Math.floor(Date.now() / 1000) + this.options.tokenLifetimeSeconds;
    return { token: sasToken(this.audience, keyName, key, expiry), expiresAt: expiry * 1000 };
  }

  /**
   * Puts a fresh token once three quarters of the current one's life are gone (the Azure SDKs
   * renew a one-hour token after 45 minutes); a failed renewal is tried again after a tenth
   * of the lifetime, until the connection ends.
   */
  private scheduleRenewal(connection: Connection, cbs: CbsClient, expiresAt: number): void {
    let timer: NodeJS.Timeout;
    const schedule = (ms: number): void => {
      timer = setTimeout(
        () => {
          const next = this.token();
          cbs.putToken(this.audience, next.token).then(
            () => {
              this.renewals.inc({ sink: this.name, outcome: 'ok' });
              schedule((next.expiresAt - Date.now()) * 0.75);
            },
            (err: Error) => {
              if (connection.state !== 'open') return;
              this.renewals.inc({ sink: this.name, outcome: 'failed' });
              this.logger.warn({ peer: this.downstream.where, err: err.message }, 'Event Hubs token renewal failed; trying again');
              schedule(this.options.tokenLifetimeSeconds * 100);
            },
          );
        },
        Math.max(0, ms),
      );
      timer.unref();
    };
    schedule((expiresAt - Date.now()) * 0.75);
    connection.once('closed', () => clearTimeout(timer));
  }

  async start(): Promise<void> {
    this.downstream.warmUp();
  }

  send(batch: Message[]): Promise<void> {
    return this.sendEvents(batch);
  }

  sendRecords(batch: FeedRecord[]): Promise<void> {
    return this.sendEvents(batch);
  }

  private async sendEvents(batch: ReadonlyArray<Message | FeedRecord>): Promise<void> {
    if (batch.length === 0) return;
    const link = await this.downstream.forBatch(this.name);
    const packed = packEvents(batch, this.options.partitionKey === 'from' && this.options.partitionId === undefined, link.maxBytes);
    const failures: unknown[] = new Array(batch.length);
    if (packed.tooLarge) {
      const { index, size } = packed.tooLarge;
      failures[index] = new Unsendable(`its batch message would be ${size} bytes, over the hub's limit of ${link.maxBytes}`);
    }
    const sends = packed.batches.map((b) =>
      link.sender.send(b.message, { messageFormat: BATCH_FORMAT }).then(
        () => undefined,
        (err: unknown) => {
          for (const i of b.indexes) failures[i] = err ?? new Error('send failed');
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

export const eventHubsSinkPlugin = definePlugin({
  name: 'eventhubs',
  kind: 'sink',
  deliveryWorker: { module: new URL('./index.js', import.meta.url).href, exportName: 'eventHubsSinkPlugin' },
  description: 'forwards messages to an Azure event hub, in batches, with SAS tokens over CBS',
  options: EventHubsSinkOptions,
  create: ({ name, logger, metrics }, options) => new EventHubsSink(name, options, logger, renewalCounter(metrics)),
});
