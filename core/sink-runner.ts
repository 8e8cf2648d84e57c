import { Counter, type Registry as MetricsRegistry } from 'prom-client';
import { isNitrogenError } from './errors.js';
import type { Logger } from './logger.js';
import type { Message } from './message.js';
import type { Sink, SinkFilter } from './ports/sink.js';
import type { FeedPosition, Store } from './ports/store.js';

export interface SinkRunnerOptions {
  batchSize: number;
  retryMinMs: number;
  retryMaxMs: number;
  /** Fallback poll of the feed, for messages committed by other instances. */
  pollMs: number;
}

export const defaultSinkRunnerOptions: SinkRunnerOptions = { batchSize: 500, retryMinMs: 100, retryMaxMs: 30_000, pollMs: 1000 };

class Stopped extends Error {}

export function sinkMatches(filter: SinkFilter, message: Message): boolean {
  return (!filter.type || filter.type.includes(message.type)) && (!filter.from || filter.from.includes(message.from));
}

export interface SinkRunnerMetrics {
  delivered: Counter<'sink'>;
  retried: Counter<'sink'>;
  deadLettered: Counter<'sink'>;
}

export function createSinkRunnerMetrics(registry: MetricsRegistry): SinkRunnerMetrics {
  return {
    delivered: new Counter({ name: 'nitrogen_sink_delivered_total', help: 'Messages a sink accepted', labelNames: ['sink'], registers: [registry] }),
    retried: new Counter({ name: 'nitrogen_sink_retries_total', help: 'Failed sink sends that will be retried', labelNames: ['sink'], registers: [registry] }),
    deadLettered: new Counter({ name: 'nitrogen_sink_dead_lettered_total', help: 'Messages a sink refused for good', labelNames: ['sink'], registers: [registry] }),
  };
}

/**
 * Feeds one sink from the store's durable feed (DESIGN.md §4): reads after the sink's
 * checkpoint, sends what its filter selects, and moves the checkpoint only once the sink
 * accepted. A sink that is down delays delivery; it never loses a message, and after a
 * restart delivery resumes from the checkpoint (at-least-once).
 */
export class SinkRunner {
  private running = false;
  private loop?: Promise<void>;
  private wake?: () => void;
  private position: FeedPosition | null = null;

  constructor(
    readonly sink: Sink,
    private readonly filter: SinkFilter,
    private readonly store: Store,
    private readonly logger: Logger,
    private readonly metrics: SinkRunnerMetrics,
    private readonly options: SinkRunnerOptions = defaultSinkRunnerOptions,
  ) {}

  private get checkpointName(): string {
    return `sink:${this.sink.name}`;
  }

  async start(): Promise<void> {
    this.position = await this.store.getCheckpoint(this.checkpointName);
    this.running = true;
    this.loop = this.run().catch((err) => {
      if (!(err instanceof Stopped)) this.logger.error({ err, sink: this.sink.name }, 'sink runner stopped by an error');
    });
  }

  /** Tells the runner that new messages were committed. */
  notify(): void {
    this.wake?.();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.loop;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }

  private async run(): Promise<void> {
    while (this.running) {
      const batch = await this.store.readFeed(this.position, this.options.batchSize);
      if (batch.messages.length === 0) {
        await this.sleep(this.options.pollMs);
        continue;
      }
      const selected = batch.messages.filter((m) => sinkMatches(this.filter, m));
      if (selected.length > 0) await this.deliver(selected);
      if (batch.position !== null) {
        await this.store.setCheckpoint(this.checkpointName, batch.position);
        this.position = batch.position;
      }
    }
  }

  private async deliver(messages: Message[]): Promise<void> {
    let pending = messages;
    let delay = this.options.retryMinMs;
    while (pending.length > 0) {
      if (!this.running) throw new Stopped();
      try {
        await this.sink.send(pending);
        this.metrics.delivered.inc({ sink: this.sink.name }, pending.length);
        return;
      } catch (err) {
        const index = isNitrogenError(err, 'NITROGEN_ERR_SINK_REJECTED') ? err.details?.index : undefined;
        if (typeof index === 'number' && index >= 0 && index < pending.length) {
          // A message refused for good is set aside with the reason, not retried forever.
          this.metrics.delivered.inc({ sink: this.sink.name }, index);
          this.metrics.deadLettered.inc({ sink: this.sink.name });
          this.logger.error({ sink: this.sink.name, messageId: pending[index]!.id, reason: (err as Error).message }, 'sink rejected a message; dead-lettered');
          pending = pending.slice(index + 1);
          continue;
        }
        this.metrics.retried.inc({ sink: this.sink.name });
        this.logger.warn({ sink: this.sink.name, err: (err as Error).message, retryInMs: delay }, 'sink send failed; will retry');
        await this.sleep(delay);
        delay = Math.min(delay * 2, this.options.retryMaxMs);
      }
    }
  }
}
