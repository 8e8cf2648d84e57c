// Reconnect delays (AMQP gives no rule; this is the client's policy.reconnect):
// each attempt waits longer, up to maxDelay, with jitter so that many clients
// do not come back in step. The count starts over only once a connection has
// stayed up for resetAfter: a peer that accepts every connection and breaks
// it soon after sees the delays grow, not a reconnect storm.
import type { ReconnectPolicy } from './policy.js';

export class Backoff {
  private attempts = 0;
  /** When the current connection came up (0 while none is up). */
  private upSince = 0;

  constructor(private readonly policy: ReconnectPolicy) {}

  /** A connection is up (connected, its sessions begun). */
  up(): void {
    this.upSince = Date.now();
  }

  /** The connection went down: the delay before the next attempt, or undefined if none is left. */
  next(): number | undefined {
    const r = this.policy;
    if (this.upSince !== 0 && Date.now() - this.upSince >= r.resetAfter) this.attempts = 0;
    this.upSince = 0;
    if (!r.enabled || this.attempts >= r.maxAttempts) return undefined;
    const delay = Math.min(r.maxDelay, r.initialDelay * r.multiplier ** this.attempts) * (1 + r.jitter * (Math.random() * 2 - 1));
    this.attempts++;
    return delay;
  }

  /** The attempt the last delay was for (1 for the first). */
  get attempt(): number {
    return this.attempts;
  }
}
