import type { Client } from 'aedes';
import type { Logger } from '../../core/logger.js';
import type { MqttMetrics } from './metrics.js';

/**
 * The cap on what the server holds for a client that does not read: bytes written to its
 * socket and not yet taken by the kernel. Over `maxBufferedBytes`, deliveries to the client are
 * skipped (a QoS 1 message for a persistent session stays queued for it); a client still over
 * the cap when `graceMs` has passed is disconnected. A slow reader costs the others nothing:
 * nobody waits for its socket (aedes-seam.ts).
 */
export class SlowReaders {
  /** Clients over the cap, with the timer that decides their fate. */
  private readonly over = new Map<Client, NodeJS.Timeout>();

  constructor(
    private readonly maxBufferedBytes: number,
    private readonly graceMs: number,
    private readonly metrics: MqttMetrics,
    private readonly logger: Logger,
  ) {}

  /** True when `client` is over the cap; the first time, starts its grace period. O(1): it runs at every delivery. */
  isOver(client: Client): boolean {
    if (client.conn.writableLength <= this.maxBufferedBytes) return false;
    if (!this.over.has(client)) {
      this.metrics.limitHit('maxBufferedBytes');
      const timer = setTimeout(() => this.decide(client), this.graceMs);
      timer.unref();
      this.over.set(client, timer);
    }
    return true;
  }

  private decide(client: Client): void {
    this.over.delete(client);
    const buffered = client.conn.writableLength;
    if (client.closed || buffered <= this.maxBufferedBytes) return;
    this.metrics.slowReadersDisconnected.inc();
    this.logger.info({ clientId: client.id, buffered, limit: this.maxBufferedBytes }, 'mqtt client does not read what it is sent (mqtt option maxBufferedBytes); disconnecting it');
    client.conn.destroy();
  }

  forget(client: Client): void {
    clearTimeout(this.over.get(client));
    this.over.delete(client);
  }

  stop(): void {
    for (const timer of this.over.values()) clearTimeout(timer);
    this.over.clear();
  }
}
