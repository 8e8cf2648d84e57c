import { Counter, Gauge, Summary, type Registry as MetricsRegistry } from 'prom-client';
import type { DeadLetters } from './dead-letters.js';
import { isNitrogenError } from './errors.js';
import type { Logger } from './logger.js';
import type { Message } from './message.js';
import type { UnitCheckpoints } from './sink-leases.js';
import type { Sink, SinkFilter } from './ports/sink.js';
import type { FeedPosition, FeedRecord, Store } from './ports/store.js';
import { SinkPosition } from './sink-position.js';

export interface SinkRunnerOptions {
  /** Most messages per `send`. */
  batchSize: number;
  /** When a read returns less than a batch, wait this long once for more before sending. */
  lingerMs: number;
  retryMinMs: number;
  retryMaxMs: number;
  /** Fallback poll of the feed, for messages committed by other instances. */
  pollMs: number;
  /** Batches sent and not yet accepted, at most (default 1). */
  inFlight?: number;
  /** The checkpoint is written at most this often (default 500 ms); a crash re-sends what was accepted since. */
  checkpointMs?: number;
  /** How often the lag is measured for health and backpressure (0: only when scraped). */
  lagCheckMs?: number;
  /** Lag bounds: past either, the sink's health is degraded (and with backpressure, acknowledgements slow down). */
  maxLagMessages?: number;
  maxLagSeconds?: number;
}

class Stopped extends Error {}

/**
 * What a runner feeds when a sink is spread over instances (core/sink-leases.ts): only the
 * messages of its partition, with the unit's fenced checkpoint in place of the store's.
 */
export interface SinkRunnerScope {
  partition: (item: { from: string }) => boolean;
  /** Which partition, for the status: `index` of `of`. */
  label: { index: number; of: number };
  checkpoints: UnitCheckpoints;
}

export function sinkMatches(filter: SinkFilter, message: Message | FeedRecord): boolean {
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
  /** Sampled: from a message's `ts` (when the server took it) to the sink's acceptance. */
  readonly latency: Summary<'sink'>;

  constructor(registry: MetricsRegistry, runners: () => SinkRunner[]) {
    this.delivered = new Counter({ name: 'nitrogen_sink_delivered_total', help: 'Messages a sink accepted', labelNames: ['sink'], registers: [registry] });
    this.retried = new Counter({ name: 'nitrogen_sink_retries_total', help: 'Failed sink sends that will be retried', labelNames: ['sink'], registers: [registry] });
    this.deadLettered = new Counter({ name: 'nitrogen_sink_dead_lettered_total', help: 'Messages a sink refused for good', labelNames: ['sink'], registers: [registry] });
    this.latency = new Summary({
      name: 'nitrogen_sink_latency_seconds',
      help: "From a message's ts to the downstream accepting it (one in 16 messages), over the last minute",
      labelNames: ['sink'],
      percentiles: [0.5, 0.99],
      maxAgeSeconds: 60,
      ageBuckets: 6,
      registers: [registry],
    });
    new Gauge({
      name: 'nitrogen_sink_over_lag_bound',
      help: "1 while the sink's lag passes its configured bound (delivery.maxLagMessages, maxLagSeconds)",
      labelNames: ['sink'],
      registers: [registry],
      collect() {
        for (const runner of runners()) this.set({ sink: runner.sink.name }, runner.overLag() ? 1 : 0);
      },
    });
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

/** A message of the feed as the runner holds it: a stored record when store and sink both take them, else an envelope. */
type Item = Message | FeedRecord;

const isRecord = (item: Item): item is FeedRecord => 'json' in item;
const itemTs = (item: Item): number => (isRecord(item) ? item.ts : Date.parse(item.ts));
const asMessage = (item: Item): Message => (isRecord(item) ? (JSON.parse(item.json.toString('utf8')) as Message) : item);

/** One in every LATENCY_SAMPLE accepted messages is timed: a quantile costs far more than a counter. */
const LATENCY_SAMPLE = 16;

/**
 * Feeds one sink from the store's durable feed (docs/architecture.md, "Delivery"): reads after the sink's
 * checkpoint, sends what its filter selects in batches, with up to `inFlight` batches sent and not
 * yet accepted, and moves the checkpoint only over batches accepted in full, in feed order
 * (sink-position.ts). A sink that is down delays delivery, with retries backing off up to
 * `retryMaxMs`; it never loses a message, and after a restart delivery resumes from the
 * checkpoint (at-least-once). A message the sink refuses for good is dead-lettered with the
 * reason. Memory is bounded by `inFlight` batches.
 */
export class SinkRunner {
  private running = false;
  private loop?: Promise<void>;
  /** Ends the idle wait for new messages; `notify()` calls it. */
  private idleWake?: () => void;
  /** Ends the wait for a free slot in the window; a settled batch calls it. */
  private slotWake?: () => void;
  /** End every wait (idle, backoff, replay); `stop()` calls them. */
  private readonly stopWakers = new Set<() => void>();
  private readonly position: SinkPosition;
  private readonly sending = new Set<Promise<void>>();
  /** Store and sink both speak records: no JSON is parsed or encoded on the way. */
  private readonly records: boolean;
  private delivered = 0;
  private deadLettered = 0;
  private lastError: string | null = null;
  /** Batches whose last send failed and are waiting to be sent again. */
  private failing = 0;
  private sampled = 0;
  private readonly replays: Replay[] = [];
  private replayTasks = new Set<Promise<void>>();
  /** The lag last measured (every `lagCheckMs`), for health, metrics and backpressure. */
  private lastLag: { count: number; oldestTs: string | null } | undefined;
  private lagTimer?: NodeJS.Timeout;

  constructor(
    readonly sink: Sink,
    private readonly filter: SinkFilter,
    private readonly store: Store,
    private readonly deadLetters: DeadLetters,
    private readonly logger: Logger,
    private readonly metrics: SinkMetrics,
    private readonly options: SinkRunnerOptions,
    private readonly scope?: SinkRunnerScope,
  ) {
    const name = `sink:${sink.name}`;
    const checkpoints = scope?.checkpoints ?? { get: () => store.getCheckpoint(name), set: (position: FeedPosition) => store.setCheckpoint(name, position) };
    this.position = new SinkPosition(checkpoints, name, options.checkpointMs ?? 500, logger);
    this.records = typeof store.readFeedRecords === 'function' && typeof sink.sendRecords === 'function';
  }

  async start(): Promise<void> {
    await this.position.load();
    this.running = true;
    this.loop = this.run().catch((err) => {
      if (!(err instanceof Stopped)) this.logger.error({ err, sink: this.sink.name }, 'sink runner stopped by an error');
    });
    if (this.store.feedLag && this.options.lagCheckMs) {
      const check = (): void => {
        void this.lag()
          ?.then(
            (lag) => (this.lastLag = lag),
            () => undefined,
          )
          .finally(() => {
            if (this.running) this.lagTimer = setTimeout(check, this.options.lagCheckMs).unref();
          });
      };
      check();
    }
  }

  /** Tells the runner that new messages were committed; it does not cut a retry backoff short. */
  notify(): void {
    this.idleWake?.();
  }

  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.lagTimer);
    for (const wake of [...this.stopWakers]) wake();
    await Promise.all([this.loop, ...this.sending, ...this.replayTasks]);
    await this.position.flush();
  }

  status(): SinkStatus {
    return {
      name: this.sink.name,
      position: this.position.checkpoint,
      delivered: this.delivered,
      deadLettered: this.deadLettered,
      retrying: this.failing > 0,
      lastError: this.lastError,
      replays: this.replays.map((r) => ({ ...r })),
      ...(this.scope ? { partition: { ...this.scope.label } } : {}),
    };
  }

  lag(): Promise<{ count: number; oldestTs: string | null }> | undefined {
    return this.store.feedLag?.(this.position.checkpoint);
  }

  /**
   * Whether the lag last measured passes the configured bound (`maxLagMessages`, `maxLagSeconds`),
   * with the reason; undefined when within it or no bound is set.
   */
  overLag(now = Date.now()): string | undefined {
    const lag = this.lastLag;
    const { maxLagMessages, maxLagSeconds } = this.options;
    if (!lag) return undefined;
    if (maxLagMessages !== undefined && lag.count > maxLagMessages) return `${lag.count} messages behind (bound ${maxLagMessages})`;
    const age = lag.oldestTs ? (now - Date.parse(lag.oldestTs)) / 1000 : 0;
    if (maxLagSeconds !== undefined && age > maxLagSeconds) return `oldest undelivered message ${age.toFixed(1)} s old (bound ${maxLagSeconds} s)`;
    return undefined;
  }

  /** Waits `ms`; `stop()` ends every wait, `notify()` only an idle one. */
  private wait(ms: number, kind: 'idle' | 'slot' | 'backoff'): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.stopWakers.delete(done);
        if (this.idleWake === done) this.idleWake = undefined;
        if (this.slotWake === done) this.slotWake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.stopWakers.add(done);
      if (kind === 'idle') this.idleWake = done;
      if (kind === 'slot') this.slotWake = done;
    });
  }

  private async run(): Promise<void> {
    let delay = this.options.retryMinMs;
    while (this.running) {
      try {
        // Sends in flight are bounded, and so are batches accepted behind one that is still being retried.
        const window = this.options.inFlight ?? 1;
        if (this.sending.size >= window || this.position.pending >= window * 8) {
          await this.wait(this.options.retryMaxMs, 'slot');
          continue;
        }
        await this.step();
        delay = this.options.retryMinMs;
      } catch (err) {
        if (err instanceof Stopped) throw err;
        // A store that fails is retried, not fatal.
        this.lastError = (err as Error).message;
        this.logger.error({ err, sink: this.sink.name, retryInMs: delay }, 'sink runner step failed; will retry');
        await this.wait(delay, 'backoff');
        delay = Math.min(delay * 2, this.options.retryMaxMs);
      }
    }
  }

  private read(after: FeedPosition | null, limit: number): Promise<{ items: Item[]; position: FeedPosition | null }> {
    if (this.records) return this.store.readFeedRecords!(after, limit).then((b) => ({ items: b.records, position: b.position }));
    return this.store.readFeed(after, limit).then((b) => ({ items: b.messages, position: b.position }));
  }

  /** One round: read after the last batch read, and send what the filter selects without waiting for the outcome. */
  private async step(): Promise<void> {
    let batch = await this.read(this.position.next, this.options.batchSize);
    if (batch.items.length === 0) {
      // Nothing new; while batches are in flight, their settling moves the checkpoint on.
      await this.wait(this.options.pollMs, 'idle');
      return;
    }
    if (batch.items.length < this.options.batchSize && this.options.lingerMs > 0) {
      // Linger once so a trickle of messages goes out in fewer, fuller sends: each send has a cost
      // of its own (a read transaction, a hand-over to the delivery thread, a transfer for Event Hubs).
      await this.wait(this.options.lingerMs, 'backoff');
      if (!this.running) return;
      const more = await this.read(batch.position, this.options.batchSize - batch.items.length);
      batch = { items: [...batch.items, ...more.items], position: more.position ?? batch.position };
    }
    const selected = batch.items.filter((m) => sinkMatches(this.filter, m) && (!this.scope || this.scope.partition(m)));
    const slot = this.position.open(batch.position);
    const task = this.deliver(selected)
      .then(
        () => this.position.settle(slot),
        (err: unknown) => {
          if (!(err instanceof Stopped)) this.logger.error({ err, sink: this.sink.name }, 'sink delivery ended by an error');
        },
      )
      .finally(() => {
        this.sending.delete(task);
        this.slotWake?.();
      });
    this.sending.add(task);
  }

  private send(items: Item[]): Promise<void> {
    if (isRecord(items[0]!)) return this.sink.sendRecords!(items as FeedRecord[]);
    return this.sink.send(items as Message[]);
  }

  /** Sends until the sink accepted every message (dead-lettering those refused for good). */
  private async deliver(items: Item[], stopWhen: () => boolean = () => !this.running): Promise<void> {
    let pending = items;
    let delay = this.options.retryMinMs;
    let failed = false;
    try {
      while (pending.length > 0) {
        if (stopWhen()) throw new Stopped();
        try {
          await this.send(pending);
          this.accepted(pending, pending.length);
          return;
        } catch (err) {
          this.lastError = (err as Error).message;
          const index = isNitrogenError(err, 'NITROGEN_ERR_SINK_REJECTED') ? err.details?.index : undefined;
          if (typeof index === 'number' && index >= 0 && index < pending.length) {
            this.accepted(pending, index);
            pending = pending.slice(index);
            // A dead letter that cannot be written is tried again with the message, after the backoff.
            const written = await this.deadLetter(pending[0]!, (err as Error).message).then(
              () => true,
              (e: Error) => ((this.lastError = e.message), false),
            );
            if (written) {
              pending = pending.slice(1);
              continue;
            }
          }
          if (!failed) this.failing++;
          failed = true;
          this.metrics.retried.inc({ sink: this.sink.name });
          this.logger.warn({ sink: this.sink.name, err: (err as Error).message, code: isNitrogenError(err) ? err.code : undefined, retryInMs: delay }, 'sink send failed; will retry');
          await this.wait(delay, 'backoff');
          delay = Math.min(delay * 2, this.options.retryMaxMs);
        }
      }
    } finally {
      if (failed) this.failing--;
    }
  }

  /** The first `count` of `items` were accepted. */
  private accepted(items: Item[], count: number): void {
    if (count === 0) return;
    this.delivered += count;
    this.metrics.delivered.inc({ sink: this.sink.name }, count);
    const now = Date.now();
    for (let i = (LATENCY_SAMPLE - this.sampled) % LATENCY_SAMPLE; i < count; i += LATENCY_SAMPLE) this.metrics.latency.observe({ sink: this.sink.name }, (now - itemTs(items[i]!)) / 1000);
    this.sampled = (this.sampled + count) % LATENCY_SAMPLE;
  }

  private async deadLetter(item: Item, reason: string): Promise<void> {
    const message = asMessage(item);
    await this.deadLetters.record(this.sink.name, message, reason);
    this.deadLettered++;
    this.metrics.deadLettered.inc({ sink: this.sink.name });
    this.logger.error({ sink: this.sink.name, messageId: message.id, reason }, 'sink rejected a message; dead-lettered');
  }

  /** Starts a replay in the background; its progress shows in `status().replays`. */
  startReplay(range: { since?: string; until?: string }): Replay {
    const replay: Replay = { id: this.replays.length + 1, ...range, state: 'running', sent: 0 };
    this.replays.push(replay);
    const task = this.replay(
      range,
      () => !this.running,
      (sent) => (replay.sent = sent),
    ).then(
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
