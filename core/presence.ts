import type { Logger } from './logger.js';
import type { Registry } from './ports/registry.js';

/**
 * Records `lastSeenAt` for principals that authenticate, in one registry write every few
 * seconds: 30,000 cars reconnecting must not cost 30,000 fsyncs.
 */
export class Presence {
  private seen = new Set<string>();
  private timer?: NodeJS.Timeout;

  constructor(private readonly registry: Registry, private readonly logger: Logger, private readonly intervalMs = 5000) {}

  async start(): Promise<void> {
    this.timer = setInterval(() => void this.flush(), this.intervalMs);
    this.timer.unref();
  }

  seenNow(id: string): void {
    this.seen.add(id);
  }

  async flush(): Promise<void> {
    if (this.seen.size === 0) return;
    const ids = [...this.seen];
    this.seen = new Set();
    try {
      await this.registry.touchPrincipals(ids, new Date().toISOString());
    } catch (err) {
      this.logger.warn({ err }, 'could not record lastSeenAt');
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }
}
