// Idle-timeout handling (AMQP 1.0 §2.4.5). Each side announces how long it
// tolerates silence. We send an empty frame whenever we have written nothing
// for a quarter of the peer's timeout (so we are never silent for half of it),
// and report the peer dead when nothing arrived during one full check of ours.
export class Heartbeat {
  /** Set on every chunk read and every write; the timers read and clear them. */
  received = false;
  wrote = false;
  private timers: NodeJS.Timeout[] = [];

  constructor(
    private readonly onIdle: () => void,
    private readonly onSilent: (ms: number) => void,
  ) {}

  start(remoteIdle: number, localIdle: number): void {
    this.stop();
    if (remoteIdle > 0) {
      this.every(Math.max(remoteIdle / 4, 25), () => {
        if (!this.wrote) this.onIdle();
        this.wrote = false;
      });
    }
    if (localIdle > 0) {
      this.received = true;
      this.every(localIdle, () => {
        if (!this.received) this.onSilent(localIdle);
        this.received = false;
      });
    }
  }

  stop(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers = [];
  }

  private every(ms: number, fn: () => void): void {
    const t = setInterval(fn, ms);
    t.unref();
    this.timers.push(t);
  }
}
