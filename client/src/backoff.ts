import { ClientError } from './errors.js';

export interface BackoffOptions {
  /** The first delay before trying again, in ms (default 500). */
  initialDelayMs: number;
  /** The longest delay, in ms (default 30,000). */
  maxDelayMs: number;
}

/**
 * Delays between reconnection attempts: doubling from `initialDelayMs` up to `maxDelayMs`, each
 * drawn at random between half and all of it ("equal jitter"), so that ten thousand devices
 * cut off together do not come back together; never zero, so a server refusing at once is not
 * hammered. `reset` after a connection that held.
 */
export class Backoff {
  private attempt = 0;

  constructor(
    private readonly options: BackoffOptions,
    private readonly random: () => number = Math.random,
  ) {}

  next(): number {
    const ceiling = Math.min(this.options.maxDelayMs, this.options.initialDelayMs * 2 ** Math.min(this.attempt, 30));
    this.attempt++;
    return ceiling / 2 + this.random() * (ceiling / 2);
  }

  /**
   * The next delay after `error`: at least what its `Retry-After` asked (429, 503), but never
   * more than `maxDelayMs`, so a server asking for days (or more than a timer can hold, which
   * Node would turn into 1 ms) cannot stall the session nor make it spin.
   */
  after(error: unknown): number {
    const asked = error instanceof ClientError ? error.retryAfterMs : undefined;
    const delay = this.next();
    return asked === undefined ? delay : Math.max(delay, Math.min(asked, this.options.maxDelayMs));
  }

  reset(): void {
    this.attempt = 0;
  }
}

/** Resolves after `ms`, or at once when `signal` aborts; holds no timer after that. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
