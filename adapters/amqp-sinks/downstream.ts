// One connection and one sending link to the downstream, opened when first needed and
// opened again after they failed. The sinks turn the client's own reconnect off: a sink
// has a durable feed and a runner that retries with backoff, so the simplest correct thing
// is to fail what was in flight at once and build everything anew on the next send. For
// Event Hubs this is also required: a new connection needs a CBS token before its link.
import type { Logger } from '../../core/logger.js';
import type { Connection, Sender } from '@nitrogen/amqp';

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
export async function withDeadline(work: Promise<unknown>, ms: number, onTimeout: () => void): Promise<boolean> {
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
