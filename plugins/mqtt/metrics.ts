import { Counter, Gauge, type Registry } from 'prom-client';
import type { MqttLimit } from './options.js';

/** Why a CONNECT was refused: the CONNACK return code's meaning (MQTT 3.1.1 §3.2.2.3), or no CONNACK. */
export type ConnectRefusal = 'protocol' | 'identifier' | 'unavailable' | 'credentials' | 'not-authorized';

/**
 * The MQTT transport's metrics. Refusals and caps are counted here rather than logged one line
 * each: an unauthenticated flood must not fill the log (docs/security.md, "MQTT").
 */
export class MqttMetrics {
  readonly connections: Gauge;
  readonly connectsRefused: Counter<'reason'>;
  readonly limitHits: Counter<'limit'>;
  readonly slowReadersDisconnected: Counter;

  constructor(registry: Registry) {
    this.connections = new Gauge({ name: 'nitrogen_mqtt_connections', help: 'Connected MQTT clients', registers: [registry] });
    this.connectsRefused = new Counter({ name: 'nitrogen_mqtt_connects_refused_total', help: 'MQTT CONNECTs refused, by reason', labelNames: ['reason'], registers: [registry] });
    this.limitHits = new Counter({ name: 'nitrogen_mqtt_limit_hits_total', help: 'Times an MQTT cap refused, dropped or skipped something, by option name', labelNames: ['limit'], registers: [registry] });
    this.slowReadersDisconnected = new Counter({ name: 'nitrogen_mqtt_slow_readers_disconnected_total', help: 'MQTT clients disconnected for staying over maxBufferedBytes', registers: [registry] });
  }

  /** `nitrogen_mqtt_persistent_subscriptions`: what this instance matches deliveries against, read at each scrape. */
  countPersistentSubscriptions(registry: Registry, count: () => Promise<number>): void {
    new Gauge({
      name: 'nitrogen_mqtt_persistent_subscriptions',
      help: 'QoS 1 and 2 subscriptions of persistent sessions (of the whole deployment, with a cluster) that queue messages',
      registers: [registry],
      async collect() {
        this.set(await count());
      },
    });
  }

  limitHit(limit: MqttLimit): void {
    this.limitHits.inc({ limit });
  }
}
