import type { AedesPublishPacket, Client, Subscription } from 'aedes';
import type { Logger } from '../../core/logger.js';
import type { Identity } from '../../core/ports/identity.js';
import type { MqttMetrics } from './metrics.js';
import type { Sessions } from './sessions.js';
import { parseSubscription, topicOwner } from './topics.js';

export interface SubscribeDeps {
  identity: Identity;
  sessions: Sessions;
  maxSubscriptions: number;
  metrics: MqttMetrics;
  logger: Logger;
  /** `cluster.roles`: a device's own commands are served with `ingestion`, everything else with `consumption`. */
  roles: ReadonlySet<string>;
}

/**
 * SUBSCRIBE (aedes `authorizeSubscribe`) and every delivery (aedes `authorizeForward`). A filter
 * refused gets 0x80 in the SUBACK [MQTT-3.9.3-2]: outside `devices/`, not permitted, or one more
 * than `maxSubscriptions` for the connection (restored subscriptions of a persistent session
 * count too).
 */
export class SubscribeHandler {
  private readonly filters = new WeakMap<Client, Set<string>>();

  constructor(private readonly deps: SubscribeDeps) {}

  authorizeSubscribe(client: Client, sub: Subscription): Subscription | null {
    if (!this.permitted(client, sub.topic)) return null;
    let filters = this.filters.get(client);
    if (!filters) this.filters.set(client, (filters = new Set()));
    if (!filters.has(sub.topic) && filters.size >= this.deps.maxSubscriptions) {
      this.deps.metrics.limitHit('maxSubscriptions');
      this.deps.logger.debug({ clientId: client.id, limit: this.deps.maxSubscriptions }, 'mqtt subscription refused: mqtt option maxSubscriptions');
      return null;
    }
    filters.add(sub.topic);
    return sub;
  }

  /** aedes `unsubscribe` event: the filters no longer count. */
  unsubscribed(client: Client, topics: readonly string[]): void {
    const filters = this.filters.get(client);
    for (const topic of topics) filters?.delete(topic);
  }

  private permitted(client: Client, filter: string): boolean {
    const principal = this.deps.sessions.principalOf(client);
    const scope = parseSubscription(filter);
    if (!principal || !scope) return false;
    const ownCommands = scope.principal === principal.id && !scope.messages;
    if (!this.deps.roles.has('consumption') && !(ownCommands && this.deps.roles.has('ingestion'))) return false;
    // A wildcard id is allowed: authorizeForward then lets through only what the principal may read.
    if (scope.principal === null || scope.principal === principal.id) return true;
    const identity = this.deps.identity;
    if (scope.messages && !identity.authorize(principal, 'subscribe', scope.principal)) return false;
    if (scope.commands && !identity.authorize(principal, 'impersonate', scope.principal)) return false;
    return true;
  }

  /** Checked at every delivery, so a revoked permission stops live subscriptions at once. */
  authorizeForward(client: Client, packet: AedesPublishPacket): AedesPublishPacket | null {
    const principal = this.deps.sessions.principalOf(client);
    const owner = topicOwner(packet.topic);
    if (!principal || !owner) return null;
    if (owner.principal === principal.id) return packet;
    const action = owner.commands ? 'impersonate' : 'subscribe';
    return this.deps.identity.authorize(principal, action, owner.principal) ? packet : null;
  }
}
