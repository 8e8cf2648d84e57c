import { EventEmitter } from 'node:events';
import type { Logger } from './logger.js';
import type { Cluster } from './ports/cluster.js';

const REVOKED = 'principal.revoked';
const PERMISSIONS = 'permissions.changed';

/**
 * Tells transports that a principal's open sessions must end: it was disabled or deleted, or
 * its credentials changed. MQTT closes its connections and SSE its streams at once, so a
 * revoked device does not keep publishing on a connection it opened before. It also tells when
 * permission records changed, so every instance reloads them at once.
 *
 * With a cluster, both go to every instance: `local` is true on the instance where the change
 * was made (the one that ends shared state, such as a deleted principal's persistent MQTT
 * sessions, once for all). While the cluster bus is down, other instances learn of a change
 * only at their next permission refresh and authentication (docs/cluster.md).
 */
export class PrincipalEvents extends EventEmitter<{ revoked: [id: string, reason: string, local: boolean]; permissions: [local: boolean] }> {
  private cluster?: Cluster;
  private logger?: Logger;

  constructor() {
    super();
    this.setMaxListeners(0); // one listener per open SSE stream
  }

  /** Sends this instance's events to the others and emits theirs here. */
  connect(cluster: Cluster, logger: Logger): void {
    this.cluster = cluster;
    this.logger = logger;
    cluster.onEvent((channel, data) => {
      const event = data as { id?: unknown; reason?: unknown } | null;
      if (channel === REVOKED && typeof event?.id === 'string' && typeof event.reason === 'string') this.emit('revoked', event.id, event.reason, false);
      else if (channel === PERMISSIONS) this.emit('permissions', false);
    });
  }

  revoke(id: string, reason: string): void {
    this.emit('revoked', id, reason, true);
    this.share(REVOKED, { id, reason });
  }

  /** Permission records changed on this instance (it reloaded them already). */
  permissionsChanged(): void {
    this.emit('permissions', true);
    this.share(PERMISSIONS, {});
  }

  private share(channel: string, data: unknown): void {
    this.cluster?.broadcast(channel, data).catch((err: unknown) => this.logger?.warn({ err, channel }, 'could not tell the other instances'));
  }
}
