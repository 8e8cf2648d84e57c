import { NitrogenError, wrapError } from './errors.js';
import type { Message } from './message.js';

interface Submission {
  messages: Message[];
  resolve: () => void;
  reject: (err: unknown) => void;
}

export interface GroupCommitOptions {
  /** Beyond this many queued or committing messages, `submit(…, {reject: true})` refuses. */
  maxPending: number;
  /** Most messages per store append (a larger single submission still goes whole). */
  maxCommitBatch: number;
  /** Commits allowed in flight at once: 1 for a single-writer store, more for networked ones. */
  concurrency: number;
}

export interface CommitObserver {
  committed(messages: number, seconds: number): void;
  pendingChanged(pending: number): void;
}

/**
 * Group commit: submissions that arrive while a commit is running (or in the same turn of
 * the event loop) are appended together in the next one, so a durable fsync is shared by
 * every message in it and durability does not cost throughput (docs/architecture.md, "Delivery").
 */
export class GroupCommit {
  private queue: Submission[] = [];
  private queued = 0;
  private committing = 0;
  private inFlight = 0;
  private scheduled = false;
  private closed = false;
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly append: (batch: Message[]) => Promise<void>,
    private readonly options: GroupCommitOptions,
    private readonly observer?: CommitObserver,
  ) {}

  /** Messages queued or being committed. */
  get pending(): number {
    return this.queued + this.committing;
  }

  /**
   * Resolves when the messages are durably stored. With `reject`, a full queue answers at once
   * with NITROGEN_ERR_OVERLOADED (REST turns it into 503 + Retry-After); without it the caller
   * waits its turn (MQTT: the client's next packets are not read until then).
   */
  submit(messages: Message[], options: { reject?: boolean } = {}): Promise<void> {
    if (this.closed) return Promise.reject(new NitrogenError('NITROGEN_ERR_UNAVAILABLE', 'server is shutting down'));
    if (options.reject && this.pending + messages.length > this.options.maxPending) {
      const err = new NitrogenError('NITROGEN_ERR_OVERLOADED', 'ingestion is saturated; retry shortly');
      err.retryAfter = 1;
      return Promise.reject(err);
    }
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ messages, resolve, reject });
      this.queued += messages.length;
      this.observer?.pendingChanged(this.pending);
      this.schedule();
    });
  }

  /** Stops accepting submissions and resolves once everything accepted is committed. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.pending === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight >= this.options.concurrency) return;
    this.scheduled = true;
    // setImmediate, not a microtask: lets every packet read in this I/O phase join the commit.
    setImmediate(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    while (this.queue.length > 0 && this.inFlight < this.options.concurrency) {
      const batch = this.take();
      void this.commit(batch);
    }
  }

  private take(): Submission[] {
    let end = 0;
    let count = 0;
    while (end < this.queue.length) {
      const size = this.queue[end]!.messages.length;
      if (end > 0 && count + size > this.options.maxCommitBatch) break;
      count += size;
      end++;
    }
    // One splice, not a shift per submission: thousands of submissions may wait.
    const taken = this.queue.splice(0, end);
    this.queued -= count;
    this.committing += count;
    return taken;
  }

  private async commit(submissions: Submission[]): Promise<void> {
    this.inFlight++;
    const messages = submissions.length === 1 ? submissions[0]!.messages : submissions.flatMap((s) => s.messages);
    const started = performance.now();
    try {
      await this.append(messages);
      this.observer?.committed(messages.length, (performance.now() - started) / 1000);
      for (const s of submissions) s.resolve();
    } catch (err) {
      const failure = wrapError(err, 'NITROGEN_ERR_STORE', 'the store failed to commit');
      for (const s of submissions) s.reject(failure);
    } finally {
      this.inFlight--;
      this.committing -= messages.length;
      this.observer?.pendingChanged(this.pending);
      if (this.queue.length > 0) this.flush();
      else if (this.pending === 0) for (const wake of this.idleWaiters.splice(0)) wake();
    }
  }
}
