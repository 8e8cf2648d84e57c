import { Worker } from 'node:worker_threads';
import { Counter, type MetricObjectWithValues, type MetricValue, type Registry as MetricsRegistry } from 'prom-client';
import { NitrogenError, type ErrorCode } from './errors.js';
import type { Logger } from './logger.js';
import { encodeMessage, type Message } from './message.js';
import type { Sink } from './ports/sink.js';
import type { FeedRecord } from './ports/store.js';
import { packRecords } from './record-batch.js';

/** How a sink plugin runs in a delivery worker: the module (a URL) and export holding the plugin. */
interface DeliveryWorkerEntry {
  module: string;
  exportName: string;
}

export interface WorkerSinkData extends DeliveryWorkerEntry {
  name: string;
  /** The sink's options as configured (the worker parses them with the plugin's schema). */
  options: unknown;
  config: unknown;
  dataDir: string;
  level: string;
}

type ErrorData = { code?: string; message: string; details?: Record<string, unknown> };
export type ToWorker = { op: 'send'; id: number; buf: ArrayBuffer } | { op: 'stop' };
export type FromWorker = { op: 'ready' } | { op: 'failed'; error: ErrorData } | { op: 'done'; id: number; error?: ErrorData } | { op: 'metrics'; metrics: MetricObjectWithValues<MetricValue<string>>[] };

const WORKER = new URL('./sink-worker.js', import.meta.url);

/** A message as a feed record, for sends that come as envelopes (replays, stores without readFeedRecords). */
function toRecord(m: Message): FeedRecord {
  return { id: m.id, from: m.from, type: m.type, to: m.to ?? null, ts: Date.parse(m.ts), expires: m.expires === undefined ? NaN : Date.parse(m.expires), json: Buffer.from(encodeMessage(m), 'utf8') };
}

/**
 * A sink that runs in a delivery worker thread of its own (docs/sinks.md, "Delivery threads"):
 * the Sink port on the main thread, the plugin's sink in the worker. A batch crosses as one
 * packed, transferred buffer (record-batch.ts) and its outcome comes back as data, so the
 * runner on the main thread keeps its position, retries and dead letters as for any sink,
 * while mapping, encoding and the downstream connection cost the ingest thread nothing. A
 * worker that dies fails its batches in flight as retryable and is started again by the next
 * send: at-least-once, as for a lost connection.
 */
export class WorkerSink implements Sink {
  private worker?: Worker;
  /** The worker started last, ready or not. */
  private current?: Worker;
  private starting?: Promise<Worker>;
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: () => void; reject: (err: Error) => void }>();
  private readonly counters = new Map<string, { counter: Counter<string>; seen: Map<string, number> }>();
  private stopping = false;

  constructor(
    readonly name: string,
    private readonly data: WorkerSinkData,
    private readonly logger: Logger,
    private readonly metrics: MetricsRegistry,
  ) {}

  async start(): Promise<void> {
    await this.spawn();
  }

  private spawn(): Promise<Worker> {
    this.starting ??= new Promise<Worker>((resolve, reject) => {
      const worker = new Worker(WORKER, { workerData: this.data, name: `sink:${this.name}` });
      this.current = worker;
      for (const { seen } of this.counters.values()) seen.clear(); // a new worker counts from 0
      worker.on('message', (message: FromWorker) => {
        if (message.op === 'ready') {
          this.worker = worker;
          resolve(worker);
        } else if (message.op === 'failed') {
          reject(asError(message.error));
          void worker.terminate();
        } else if (message.op === 'done') this.settle(message.id, message.error);
        else if (message.op === 'metrics') this.mirror(message.metrics);
      });
      worker.on('error', (err) => {
        this.logger.error({ err, sink: this.name }, 'sink delivery worker failed');
        reject(err);
      });
      worker.on('exit', (code) => {
        if (this.current === worker) {
          this.current = this.worker = this.starting = undefined;
        }
        reject(new Error(`delivery worker exited with code ${code} before it was ready`));
        const lost = new NitrogenError('NITROGEN_ERR_SINK_RETRYABLE', `${this.name}: the delivery worker stopped (exit code ${code})`);
        for (const [id, p] of this.pending) {
          this.pending.delete(id);
          p.reject(lost);
        }
      });
    });
    return this.starting;
  }

  send(batch: Message[]): Promise<void> {
    return this.sendRecords(batch.map(toRecord));
  }

  async sendRecords(batch: FeedRecord[]): Promise<void> {
    if (batch.length === 0) return;
    if (this.stopping) throw new NitrogenError('NITROGEN_ERR_SINK_RETRYABLE', `${this.name}: sink is stopping`);
    const worker =
      this.worker ??
      (await this.spawn().catch((err: Error) => {
        throw new NitrogenError('NITROGEN_ERR_SINK_RETRYABLE', `${this.name}: the delivery worker cannot start: ${err.message}`, { cause: err });
      }));
    const buf = packRecords(batch).buffer as ArrayBuffer;
    const id = this.nextId++;
    return new Promise<void>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ op: 'send', id, buf } satisfies ToWorker, [buf]);
    });
  }

  private settle(id: number, error?: ErrorData): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    if (error) p.reject(asError(error));
    else p.resolve();
  }

  /** Adds what the worker's counters grew by since their last report to counters of the same name here. */
  private mirror(metrics: MetricObjectWithValues<MetricValue<string>>[]): void {
    for (const m of metrics) {
      if (m.values.length === 0) continue; // its label names show with its first value
      let mirrored = this.counters.get(m.name);
      if (!mirrored) {
        const counter =
          (this.metrics.getSingleMetric(m.name) as Counter<string> | undefined) ?? new Counter({ name: m.name, help: m.help, labelNames: [...new Set(m.values.flatMap((v) => Object.keys(v.labels)))], registers: [this.metrics] });
        this.counters.set(m.name, (mirrored = { counter, seen: new Map() }));
      }
      for (const v of m.values) {
        const key = JSON.stringify(v.labels);
        const grew = v.value - (mirrored.seen.get(key) ?? 0);
        mirrored.seen.set(key, v.value);
        if (grew > 0) mirrored.counter.inc(v.labels as never, grew);
      }
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    const worker = this.worker ?? (await this.starting?.catch(() => undefined));
    if (!worker) return;
    const exited = new Promise((resolve) => worker.once('exit', resolve));
    worker.postMessage({ op: 'stop' } satisfies ToWorker);
    const timer = setTimeout(() => void worker.terminate(), 10_000);
    await exited;
    clearTimeout(timer);
  }
}

function asError(error: ErrorData): Error {
  return error.code ? new NitrogenError(error.code as ErrorCode, error.message, { details: error.details }) : new Error(error.message);
}
