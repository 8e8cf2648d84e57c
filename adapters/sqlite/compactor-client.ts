import { Worker } from 'node:worker_threads';
import { NitrogenError } from '../../core/errors.js';
import type { CompactorEvent, CompactorOptions, CompactorRequest } from './compactor-protocol.js';

type Request = CompactorRequest extends infer R ? (R extends { id: number } ? Omit<R, 'id'> : never) : never;
type Waiter = { resolve: (result: number | undefined) => void; reject: (err: Error) => void };

export interface CompactorNews {
  compacted(seq: number): void;
  /** A compaction failed (it is retried), or with `fatal` the thread is gone. */
  failed(error: string, fatal: boolean): void;
}

/** The store's side of the compactor thread: starting it, requests and their replies, its news. */
export class CompactorClient {
  private readonly worker: Worker;
  private readonly exit: Promise<unknown>;
  private readonly waiters = new Map<number, Waiter>();
  private nextRequest = 1;
  private failure?: Error;
  private closing = false;

  private constructor(
    options: CompactorOptions,
    private readonly on: CompactorNews,
  ) {
    this.worker = new Worker(new URL('./compactor-worker.js', import.meta.url), { workerData: options });
    this.exit = new Promise((resolve) => this.worker.once('exit', resolve));
    this.worker.on('error', (err) => this.fail(err));
    this.worker.on('exit', (code) => {
      if (this.closing) return;
      this.fail(new Error(`SQLite compactor thread exited with code ${code}`));
      this.on.failed(this.failure!.message, true);
    });
  }

  /** Starts the thread; resolves once it has recovered what the journal held, with the next sequence number. */
  static async start(options: CompactorOptions, on: CompactorNews): Promise<{ client: CompactorClient; nextSeq: number; recovered: number; migrated: number }> {
    const client = new CompactorClient(options, on);
    const ready = await new Promise<{ nextSeq: number; recovered: number; migrated: number }>((resolve, reject) => {
      client.worker.on('message', (event: CompactorEvent) => {
        if (event.op === 'ready') resolve(event);
        else if (event.op === 'failed' && event.fatal) reject(new NitrogenError('NITROGEN_ERR_STORE', `SQLite store could not start: ${event.error}`));
        else client.event(event);
      });
      void client.exit.then(() => reject(client.failure ?? new Error('SQLite compactor thread exited')));
    }).catch(async (err: unknown) => {
      await client.close();
      throw err;
    });
    return { client, ...ready };
  }

  /** Why the thread is gone, if it is. */
  get failed(): Error | undefined {
    return this.failure;
  }

  /** Tells the thread, without waiting for an answer. */
  post(message: CompactorRequest): void {
    if (!this.failure) this.worker.postMessage(message);
  }

  request(request: Request): Promise<number | undefined> {
    if (this.failure) return Promise.reject(new NitrogenError('NITROGEN_ERR_UNAVAILABLE', 'SQLite compactor is not running', { cause: this.failure }));
    const id = this.nextRequest++;
    return new Promise((resolve, reject) => {
      this.waiters.set(id, { resolve, reject });
      this.worker.postMessage({ ...request, id });
    });
  }

  /** Asks the thread to compact what is left and stop; resolves when it has exited. */
  async close(): Promise<void> {
    if (!this.closing) {
      this.closing = true;
      // A thread that is gone already answers nothing: stop waiting when it exits.
      if (!this.failure) await Promise.race([this.request({ op: 'close' }).catch(() => {}), this.exit]);
      await this.worker.terminate();
    }
    await this.exit;
    this.fail(new Error('store stopped'));
  }

  private event(event: CompactorEvent): void {
    if (event.op === 'compacted') this.on.compacted(event.seq);
    else if (event.op === 'failed') this.on.failed(event.error, event.fatal);
    else if (event.op === 'reply') {
      const waiter = this.waiters.get(event.id);
      this.waiters.delete(event.id);
      if (event.ok) waiter?.resolve(event.result);
      else waiter?.reject(new NitrogenError('NITROGEN_ERR_STORE', `SQLite write failed: ${event.error}`, { cause: Object.assign(new Error(event.error), { code: event.code }) }));
    }
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const waiter of this.waiters.values()) waiter.reject(new NitrogenError('NITROGEN_ERR_STORE', err.message, { cause: err }));
    this.waiters.clear();
  }
}
