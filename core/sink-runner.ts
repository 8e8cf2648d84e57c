import { Counter, Gauge, type Registry as MetricsRegistry } from 'prom-client';
import type { DeadLetters } from './dead-letters.js';
import { isNitrogenError } from './errors.js';
import type { Logger } from './logger.js';
import type { Message } from './message.js';
import type { UnitCheckpoints } from './sink-leases.js';
import type { Sink, SinkFilter } from './ports/sink.js';
import type { FeedPosition, Store } from './ports/store.js';

export interface SinkRunnerOptions {
  /** Most messages per `send`. */
  batchSize: number;
  /** When a read returns less than a batch, wait this long once for more before sending. */
  lingerMs: number;
  retryMinMs: number;
  retryMaxMs: number;
  /** Fallback poll of the feed, for messages committed by other instances. */
  pollMs: number;
}

class Stopped extends Error {}

/**
 * What a runner feeds when a sink is spread over instances (core/sink-leases.ts): only the
 * messages of its partition, with the unit's fenced checkpoint in place of the store's.
 */
export interface SinkRunnerScope {
  partition: (message: Message) => boolean;
  /** Which partition, for the status: `index` of `of`. */
  label: { index: number; of: number };
  checkpoints: UnitCheckpoints;
}

export function sinkMatches(filter: SinkFilter, message: Message): boolean {
  return (!filter.type || filter.type.includes(message.type)) && (!filter.from || filter.from.includes(message.from));
}

export interface Replay {
  id: number;
  since?: string;
  until?: string;
  state: 'running' | 'done' | 'failed' | 'cancelled';
  sent: number;
  error?: string;
}

export interface SinkStatus {
  name: string;
  position: FeedPosition | null;
  delivered: number;
  deadLettered: number;
  retrying: boolean;
  lastError: string | null;
  replays: Replay[];
  /** On a cluster: the partition this runner feeds (core/sink-leases.ts). */
  partition?: { index: number; of: number };
}

/** Per-sink metrics on /metrics: delivered, retried, dead-lettered, and lag (count and oldest age). */
export class SinkMetrics {
  readonly delivered: Counter<'sink'>;
  readonly retried: Counter<'sink'>;
  readonly deadLettered: Counter<'sink'>;

  constructor(registry: MetricsRegistry, runners: () => SinkRunner[]) {
    this.delivered = new Counter({ name: 'nitrogen_sink_delivered_total', help: 'Messages a sink accepted', labelNames: ['sink'], registers: [registry] });
    this.retried = new Counter({ name: 'nitrogen_sink_retries_total', help: 'Failed sink sends that will be retried', labelNames: ['sink'], registers: [registry] });
    this.deadLettered = new Counter({ name: 'nitrogen_sink_dead_lettered_total', help: 'Messages a sink refused for good', labelNames: ['sink'], registers: [registry] });
    // Both lag gauges are computed at scrape time from the store, so they are right even while
    // the sink is stuck. prom-client collects every metric of a scrape at once: the two share
    // one read of the lags, made by whichever collects first, and each sets its own values.
    const readLags = async () => {
      const all = await Promise.all(runners().map(async (runner) => ({ sink: runner.sink.name, lag: await runner.lag() })));
      const ageSeconds = (ts: string | null) => (ts ? Math.max(0, (Date.now() - Date.parse(ts)) / 1000) : 0);
      // Several partitions of one sink (core/sink-leases.ts): the one furthest behind is set last, so it shows.
      return all.flatMap(({ sink, lag }) => (lag ? [{ sink, count: lag.count, seconds: ageSeconds(lag.oldestTs) }] : [])).sort((x, y) => x.count - y.count);
    };
    let reading: ReturnType<typeof readLags> | undefined;
    const lags = () => (reading ??= readLags().finally(() => (reading = undefined)));
    new Gauge({
      name: 'nitrogen_sink_lag_messages',
      help: 'Committed messages the sink has not yet passed',
      labelNames: ['sink'],
      registers: [registry],
      async collect() {
        for (const lag of await lags()) this.set({ sink: lag.sink }, lag.count);
      },
    });
    new Gauge({
      name: 'nitrogen_sink_lag_seconds',
      help: 'Age of the oldest committed message the sink has not yet passed',
      labelNames: ['sink'],
      registers: [registry],
      async collect() {
        for (const lag of await lags()) this.set({ sink: lag.sink }, lag.seconds);
      },
    });
  }
}

/**
 * Feeds one sink from the store's durable feed (docs/architecture.md, "Delivery"): reads after the sink's
 * checkpoint, sends what its filter selects in batches, and moves the checkpoint only once the
 * sink accepted. A sink that is down delays delivery, with retries backing off up to
 * `retryMaxMs`; it never loses a message, and after a restart delivery resumes from the
 * checkpoint (at-least-once). A message the sink refuses for good is dead-lettered with the
 * reason. Memory is bounded by one batch.
 */
export class SinkRunner {
  private running = false;
  private loop?: Promise<void>;
  /** Ends the idle wait for new messages; `notify()` calls it. */
  private idleWake?: () => void;
  /** End every wait (idle, backoff, replay); `stop()` calls them. */
  private readonly stopWakers = new Set<() => void>();
  /** Where the next read starts: after everything the sink accepted. */
  private position: FeedPosition | null = null;
  /** The checkpoint last written durably; a restart resumes here, so retention keeps what follows. */
  private checkpoint: FeedPosition | null = null;
  /** The checkpoint writer, while it runs: it overlaps the next send. */
  private writing?: Promise<void>;
  /** The latest position waiting to be written; older ones waiting are skipped. */
  private nextCheckpoint?: FeedPosition;
  private delivered = 0;
  private deadLettered = 0;
  private lastError: string | null = null;
  private retrying = false;
  private readonly replays: Replay[] = [];
  private replayTasks = new Set<Promise<void>>();

  constructor(
    readonly sink: Sink,
    private readonly filter: SinkFilter,
    private readonly store: Store,
    private readonly deadLetters: DeadLetters,
    private readonly logger: Logger,
    private readonly metrics: SinkMetrics,
    private readonly options: SinkRunnerOptions,
    private readonly scope?: SinkRunnerScope,
  ) {}

  private get checkpointName(): string {
    return `sink:${this.sink.name}`;
  }

  async start(): Promise<void> {
    this.position = this.checkpoint = await (this.scope ? this.scope.checkpoints.get() : this.store.getCheckpoint(this.checkpointName));
    this.running = true;
    this.loop = this.run().catch((err) => {
      if (!(err instanceof Stopped)) this.logger.error({ err, sink: this.sink.name }, 'sink runner stopped by an error');
    });
  }

  /** Tells the runner that new messages were committed; it does not cut a retry backoff short. */
  notify(): void {
    this.idleWake?.();
  }

  async stop(): Promise<void> {
    this.running = false;
    for (const wake of [...this.stopWakers]) wake();
    await Promise.all([this.loop, ...this.replayTasks]);
    await this.writing;
  }

  status(): SinkStatus {
    return {
      name: this.sink.name, position: this.checkpoint, delivered: this.delivered, deadLettered: this.deadLettered,
      retrying: this.retrying, lastError: this.lastError, replays: this.replays.map((r) => ({ ...r })),
      ...(this.scope ? { partition: { ...this.scope.label } } : {}),
    };
  }

  lag(): Promise<{ count: number; oldestTs: string | null }> | undefined {
    return this.store.feedLag?.(this.checkpoint);
  }

  /** Waits `ms`; `stop()` ends every wait, `notify()` only an idle one. */
  private wait(ms: number, idle: boolean): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.stopWakers.delete(done);
        if (this.idleWake === done) this.idleWake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.stopWakers.add(done);
      if (idle) this.idleWake = done;
    });
  }

  private async run(): Promise<void> {
    let delay = this.options.retryMinMs;
    while (this.running) {
      try {
        await this.step();
        delay = this.options.retryMinMs;
      } catch (err) {
        if (err instanceof Stopped) throw err;
        // A store that fails (or a dead letter that cannot be written) is retried, not fatal.
        this.lastError = (err as Error).message;
        this.logger.error({ err, sink: this.sink.name, retryInMs: delay }, 'sink runner step failed; will retry');
        await this.wait(delay, false);
        delay = Math.min(delay * 2, this.options.retryMaxMs);
      }
    }
  }

  /** One round: read after the checkpoint, deliver what the filter selects, move the checkpoint. */
  private async step(): Promise<void> {
    let batch = await this.store.readFeed(this.position, this.options.batchSize);
    if (batch.messages.length === 0) {
      await this.wait(this.options.pollMs, true);
      return;
    }
    if (batch.messages.length < this.options.batchSize && this.options.lingerMs > 0) {
      // Linger once so a trickle of messages goes out in fewer, fuller sends.
      await this.wait(this.options.lingerMs, false);
      const more = await this.store.readFeed(batch.position, this.options.batchSize - batch.messages.length);
      batch = { messages: [...batch.messages, ...more.messages], position: more.position ?? batch.position };
    }
    const selected = batch.messages.filter((m) => sinkMatches(this.filter, m) && (!this.scope || this.scope.partition(m)));
    if (selected.length > 0) await this.deliver(selected);
    if (batch.position !== null) this.advance(batch.position);
  }

  /** Moves the read position at once; the checkpoint follows in the background, one write at a time. */
  private advance(position: FeedPosition): void {
    this.position = position;
    this.nextCheckpoint = position;
    this.writing ??= this.writeCheckpoints();
  }

  private async writeCheckpoints(): Promise<void> {
    while (this.nextCheckpoint !== undefined) {
      const position = this.nextCheckpoint;
      this.nextCheckpoint = undefined;
      try {
        await (this.scope ? this.scope.checkpoints.set(position) : this.store.setCheckpoint(this.checkpointName, position));
        this.checkpoint = position;
      } catch (err) {
        // A later write carries a later position; until then a restart re-sends (at-least-once).
        this.logger.warn({ err, sink: this.sink.name }, 'could not write the sink checkpoint');
      }
    }
    this.writing = undefined;
  }

  /** Sends until the sink accepted every message (dead-lettering those refused for good). */
  private async deliver(messages: Message[], stopWhen: () => boolean = () => !this.running): Promise<void> {
    let pending = messages;
    let delay = this.options.retryMinMs;
    while (pending.length > 0) {
      if (stopWhen()) throw new Stopped();
      try {
        await this.sink.send(pending);
        this.accepted(pending.length);
        this.retrying = false;
        return;
      } catch (err) {
        this.lastError = (err as Error).message;
        const index = isNitrogenError(err, 'NITROGEN_ERR_SINK_REJECTED') ? err.details?.index : undefined;
        if (typeof index === 'number' && index >= 0 && index < pending.length) {
          this.accepted(index);
          await this.deadLetter(pending[index]!, (err as Error).message);
          pending = pending.slice(index + 1);
          continue;
        }
        this.retrying = true;
        this.metrics.retried.inc({ sink: this.sink.name });
        this.logger.warn({ sink: this.sink.name, err: (err as Error).message, code: isNitrogenError(err) ? err.code : undefined, retryInMs: delay }, 'sink send failed; will retry');
        await this.wait(delay, false);
        delay = Math.min(delay * 2, this.options.retryMaxMs);
      }
    }
  }

  private accepted(count: number): void {
    this.delivered += count;
    this.metrics.delivered.inc({ sink: this.sink.name }, count);
  }

  private async deadLetter(message: Message, reason: string): Promise<void> {
    await this.deadLetters.record(this.sink.name, message, reason);
    this.deadLettered++;
    this.metrics.deadLettered.inc({ sink: this.sink.name });
    this.logger.error({ sink: this.sink.name, messageId: message.id, reason }, 'sink rejected a message; dead-lettered');
  }

  /** Starts a replay in the background; its progress shows in `status().replays`. */
  startReplay(range: { since?: string; until?: string }): Replay {
    const replay: Replay = { id: this.replays.length + 1, ...range, state: 'running', sent: 0 };
    this.replays.push(replay);
    const task = this.replay(range, () => !this.running, (sent) => (replay.sent = sent)).then(
      () => {
        replay.state = 'done';
      },
      (err: unknown) => {
        replay.state = err instanceof Stopped ? 'cancelled' : 'failed';
        if (!(err instanceof Stopped)) replay.error = (err as Error).message;
      },
    );
    this.replayTasks.add(task);
    void task.finally(() => this.replayTasks.delete(task));
    return { ...replay };
  }

  /**
   * Sends the stored messages of a time range again (for a new downstream consumer), through
   * this sink's filter, beside live delivery. Resolves with the number of messages sent.
   */
  async replay(range: { since?: string; until?: string }, isCancelled: () => boolean = () => !this.running, progress?: (sent: number) => void): Promise<number> {
    let cursor: string | undefined;
    let sent = 0;
    do {
      const page = await this.store.query({ ...range, order: 'asc', limit: this.options.batchSize, cursor });
      const selected = page.items.filter((m) => sinkMatches(this.filter, m));
      if (selected.length > 0) await this.deliver(selected, isCancelled);
      sent += selected.length;
      progress?.(sent);
      cursor = page.next ?? undefined;
    } while (cursor);
    return sent;
  }
}
