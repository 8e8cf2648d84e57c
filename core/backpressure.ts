/**
 * Slows acknowledgements down while a sink is past its lag bound (docs/sinks.md, "Backpressure"):
 * each commit then waits `delayMs` first. A device has a bounded window of unacknowledged
 * PUBLISHes, so it sends more slowly and keeps the rest in its own buffer, instead of the store
 * taking in more than the sink can pass on. Acknowledgements are slowed, never stopped: a device
 * waiting longer than its keep-alive would drop the connection and send everything again.
 * The check is cached for `checkMs`, so the hot path pays a clock read and a comparison.
 */
export class BackpressureGate {
  private checkedAt = 0;
  private closed = false;

  constructor(
    private readonly isOver: () => boolean,
    private readonly delayMs = 100,
    private readonly checkMs = 100,
  ) {}

  /** Undefined when acknowledgements may go at once; otherwise a promise that resolves after the delay. */
  pass(now = Date.now()): Promise<void> | undefined {
    if (now - this.checkedAt >= this.checkMs) {
      this.checkedAt = now;
      this.closed = this.isOver();
    }
    return this.closed ? new Promise((resolve) => setTimeout(resolve, this.delayMs)) : undefined;
  }
}
