// One connection and one sending link to the downstream, opened when first needed and
// opened again after they failed. The sinks turn the client's own reconnect off: a sink
// has a durable feed and a runner that retries with backoff, so the simplest correct thing
// is to fail what was in flight at once and build everything anew on the next send. For
// Event Hubs this is also required: a new connection needs a CBS token before its link.
import type { Logger } from '../../core/logger.js';
import type { Connection, Sender } from '@nitrogen/amqp';
import { retryable, settle } from './outcomes.js';

export interface Link {
  connection: Connection;
  sender: Sender;
}

export class Downstream<L extends Link = Link> {
  private opening: Promise<L> | undefined;
  private link: L | undefined;
  private stopped = false;

  /** `where` names the peer in logs and errors (host and port, never credentials). */
  constructor(
    private readonly open: () => Promise<L>,
    readonly where: string,
    private readonly logger: Logger,
  ) {}

  /** The open link, or a new one; rejects with the connect, authentication or attach error. */
  async get(): Promise<L> {
    if (this.stopped) throw new Error('sink is stopped');
    const link = this.link;
    if (link && link.connection.state === 'open' && link.sender.state === 'attached') return link;
    if (link) this.reset(); // lost, or the peer detached the link: start again
    this.opening ??= this.open().then(
      (fresh) => {
        this.opening = undefined;
        if (this.stopped) {
          void fresh.connection.close().catch(() => undefined);
          throw new Error('sink is stopped');
        }
        this.link = fresh;
        this.logger.info({ peer: this.where }, 'sink connected');
        fresh.connection.once('closed', (err?: Error) => {
          if (err) this.logger.warn({ peer: this.where, err: err.message }, 'sink connection lost; reconnecting on the next send');
        });
        return fresh;
      },
      (err: unknown) => {
        this.opening = undefined;
        throw err;
      },
    );
    return this.opening;
  }

  /** Starts connecting now, so that a wrong address or credential shows in the log at once, not at the first message. */
  warmUp(): void {
    this.get().catch((err: Error) => this.logger.warn({ peer: this.where, err: err.message }, 'sink cannot connect yet; delivery waits and retries'));
  }

  /** The link for a batch of sink `sink`: failing to get one is NITROGEN_ERR_SINK_RETRYABLE. */
  forBatch(sink: string): Promise<L> {
    return this.get().catch((err: unknown) => {
      throw retryable(sink, `cannot connect to ${this.where}`, err);
    });
  }

  /**
   * Waits for a batch's sends, each of which records its failure in `failures` (by message, in
   * batch order), for at most `timeoutMs`; past it the connection is reset (failing what is in
   * flight) and the batch is retryable. Then answers for the batch as outcomes.ts `settle` says.
   */
  async settle(sink: string, sends: Array<Promise<unknown>>, timeoutMs: number, ids: readonly string[], failures: ReadonlyArray<unknown>): Promise<void> {
    const timedOut = await withDeadline(Promise.all(sends), timeoutMs, () => this.reset());
    if (timedOut) throw retryable(sink, this.where, new Error(`no outcome within ${timeoutMs} ms; reconnecting`));
    settle(sink, ids, failures);
  }

  /** Closes the current connection: sends in flight fail at once, and the next send reconnects. */
  reset(): void {
    const link = this.link;
    this.link = undefined;
    void link?.connection.close().catch(() => undefined);
  }

  async close(): Promise<void> {
    this.stopped = true;
    await this.opening?.catch(() => undefined);
    const link = this.link;
    this.link = undefined;
    await link?.connection.close().catch(() => undefined);
  }
}

/**
 * Waits for `work`; if it has not finished after `ms`, calls `onTimeout`, which must make it
 * finish (by closing the connection, failing what is in flight). Resolves whether it timed out.
 */
async function withDeadline(work: Promise<unknown>, ms: number, onTimeout: () => void): Promise<boolean> {
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    onTimeout();
  }, ms);
  try {
    await work;
  } finally {
    clearTimeout(timer);
  }
  return timedOut;
}
