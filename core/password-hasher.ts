import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { Counter, Gauge, type Registry as MetricsRegistry } from 'prom-client';
import { z } from 'zod';
import { NitrogenError } from './errors.js';
import type { Lifecycle } from './ports/lifecycle.js';
import type { HashJob, HashReply, HashRequest } from './password-worker.js';

/** Half the cores: the other half keeps acknowledging messages while a login flood is hashed. */
const DEFAULT_CONCURRENCY = Math.max(1, Math.floor(availableParallelism() / 2));

export const HashingOptions = z.strictObject({
  /** Password hashes computed at once, each on its own thread (about 32 MiB each). */
  concurrency: z.number().int().min(1).max(64).default(DEFAULT_CONCURRENCY),
  /** Password checks waiting for a thread; one more is refused at once with NITROGEN_ERR_OVERLOADED. */
  maxQueue: z.number().int().min(0).max(100_000).default(32),
});
export type HashingOptions = z.output<typeof HashingOptions>;

interface Waiting {
  job: HashRequest;
  resolve(result: string | boolean): void;
  reject(err: Error): void;
}

interface Slot {
  worker?: Worker;
  running?: Waiting & { id: number };
}

/**
 * Bounded password hashing (scrypt) off the event loop and off libuv's thread pool: a few
 * threads, and a bounded queue in front of them. Unauthenticated logins can make it busy, never
 * make it hold more than `maxQueue` waiting checks, and never delay the store's writes, which
 * share libuv's pool with `crypto.scrypt`. Hashes for authenticated callers (registration,
 * password changes, the admin bootstrap) have their own queue and go first.
 */
export class PasswordHasher implements Lifecycle {
  private readonly slots: Slot[];
  private readonly logins: Waiting[] = [];
  private readonly trusted: Waiting[] = [];
  private nextId = 1;
  private stopped = false;
  private mostRunning = 0;
  private mostQueued = 0;
  private readonly refused?: Counter;

  constructor(
    private readonly options: HashingOptions,
    metrics?: MetricsRegistry,
  ) {
    this.slots = Array.from({ length: options.concurrency }, () => ({}));
    if (!metrics) return;
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- prom-client calls collect() with the metric as `this`
    const hasher = this;
    new Gauge({
      name: 'nitrogen_password_hashes_running',
      help: 'Password hashes being computed',
      registers: [metrics],
      collect() {
        this.set(hasher.stats().running);
      },
    });
    new Gauge({
      name: 'nitrogen_password_hashes_queued',
      help: 'Password hashes waiting for a thread',
      registers: [metrics],
      collect() {
        this.set(hasher.stats().queued);
      },
    });
    this.refused = new Counter({ name: 'nitrogen_password_hashes_refused_total', help: 'Password checks refused because credentials.hashing.maxQueue were waiting', registers: [metrics] });
  }

  /** Whether `password` matches an scrypt digest. Throws NITROGEN_ERR_OVERLOADED when the queue is full. */
  async verify(password: string, digest: string): Promise<boolean> {
    return (await this.enqueue(this.logins, { op: 'verify', password, digest })) as boolean;
  }

  /** A new scrypt digest, for a caller already authenticated; served before pending logins. */
  async hash(password: string): Promise<string> {
    return (await this.enqueue(this.trusted, { op: 'hash', password })) as string;
  }

  /** Hashes running and waiting now, and the most that ever did at once (never above `concurrency`, and `maxQueue` per queue). */
  stats(): { running: number; queued: number; mostRunning: number; mostQueued: number } {
    return { running: this.slots.filter((s) => s.running).length, queued: this.logins.length + this.trusted.length, mostRunning: this.mostRunning, mostQueued: this.mostQueued };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const gone = new NitrogenError('NITROGEN_ERR_UNAVAILABLE', 'the server is stopping');
    for (const waiting of this.logins.splice(0).concat(this.trusted.splice(0))) waiting.reject(gone);
    // eslint-disable-next-line @typescript-eslint/await-thenable -- a slot that never started a thread has nothing to wait for
    await Promise.all(this.slots.map((slot) => slot.worker?.terminate()));
  }

  private enqueue(queue: Waiting[], job: HashRequest): Promise<string | boolean> {
    if (this.stopped) return Promise.reject(new NitrogenError('NITROGEN_ERR_UNAVAILABLE', 'the server is stopping'));
    const idle = this.slots.some((s) => !s.running);
    if (!idle && queue.length >= this.options.maxQueue) {
      this.refused?.inc();
      const err = new NitrogenError('NITROGEN_ERR_OVERLOADED', `too many password checks at once (credentials.hashing.maxQueue is ${this.options.maxQueue}); retry later`);
      err.retryAfter = 1;
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      queue.push({ job, resolve, reject });
      this.mostQueued = Math.max(this.mostQueued, queue.length);
      this.dispatch();
    });
  }

  private dispatch(): void {
    for (const slot of this.slots) {
      if (slot.running) continue;
      const next = this.trusted.shift() ?? this.logins.shift();
      if (!next) return;
      const running = { ...next, id: this.nextId++ };
      slot.running = running;
      this.mostRunning = Math.max(this.mostRunning, this.stats().running);
      this.workerOf(slot).postMessage({ ...next.job, id: running.id } satisfies HashJob);
    }
  }

  private workerOf(slot: Slot): Worker {
    if (slot.worker) return slot.worker;
    const worker = new Worker(new URL('./password-worker.js', import.meta.url));
    worker.unref();
    worker.on('message', (reply: HashReply) => {
      const running = slot.running;
      if (!running || running.id !== reply.id) return;
      slot.running = undefined;
      if ('error' in reply) running.reject(new NitrogenError('NITROGEN_ERR_INTERNAL', `password hashing failed: ${reply.error}`));
      else running.resolve(reply.result);
      this.dispatch();
    });
    const lost = (why: string) => {
      if (slot.worker !== worker) return;
      slot.worker = undefined;
      const running = slot.running;
      slot.running = undefined;
      running?.reject(new NitrogenError('NITROGEN_ERR_INTERNAL', `password hashing thread ${why}`));
      if (!this.stopped) this.dispatch();
    };
    worker.on('error', (err) => lost(`failed: ${err.message}`));
    worker.on('exit', (code) => lost(`exited with code ${code}`));
    slot.worker = worker;
    return worker;
  }
}
