import type { Aedes } from 'aedes';
import type { Origin } from '../../core/bus.js';
import type { Logger } from '../../core/logger.js';
import { encodeMessage, type Message } from '../../core/message.js';
import type { InstanceIdentity } from '../../core/ports/cluster.js';
import type { MqttOriginTag } from './publish.js';
import { commandsTopic, messagesTopic } from './topics.js';

/**
 * Publishes acknowledged envelopes to MQTT subscribers, whichever transport committed them
 * (docs/api.md, "What subscribers receive"), except what aedes forwards itself: the envelope of
 * a single-message MQTT PUBLISH, on the topic it was rewritten to.
 *
 * With a cluster (`instance` given) it delivers everything, what other instances committed
 * too, and names each delivery as every instance does: brokerId `n:{instance}:{run}` of the
 * committing instance, brokerCounter twice the message's sequence number (plus one on the
 * commands topic). A persistent session's queue holds the delivery under that name
 * (shared-session-store.ts), and aedes' duplicate check per client (increasing counters per
 * brokerId) holds across instances. Retained messages are set by the committing instance only.
 */
export class FanOut {
  constructor(
    private readonly broker: Aedes,
    private readonly logger: Logger,
    private readonly instance?: InstanceIdentity,
  ) {}

  /** A bus listener. */
  forward(messages: readonly Message[], origin: Origin): void {
    if (this.broker.closed) return;
    if (this.instance) return this.forwardNamed(messages, origin, this.instance);
    const tag = origin.transport === 'mqtt' ? (origin.tag as MqttOriginTag) : undefined;
    // What aedes already forwarded is known from the tag: MQTT telemetry, the hot path, builds
    // no topic, payload or closure here.
    const messagesForwarded = tag?.forwarded === 'messages';
    const commandsForwarded = tag?.forwarded === 'commands';
    for (const m of messages) {
      const toCommands = m.to !== undefined && !commandsForwarded;
      if (messagesForwarded && !toCommands) continue;
      const payload = Buffer.from(encodeMessage(m));
      // Retained only on the messages topic: a command is never retained.
      if (!messagesForwarded) this.send({ cmd: 'publish', topic: messagesTopic(m.from, m.type), payload, qos: 1, retain: tag?.retain === true, dup: false });
      if (toCommands) this.send({ cmd: 'publish', topic: commandsTopic(m.to!, m.type), payload, qos: 1, retain: false, dup: false });
    }
  }

  private forwardNamed(messages: readonly Message[], origin: Origin, instance: InstanceIdentity): void {
    const local = origin.instance === instance.id && origin.run === instance.run;
    const retain = local && origin.transport === 'mqtt' && (origin.tag as MqttOriginTag | undefined)?.retain === true;
    const brokerId = `n:${origin.instance}:${origin.run}`;
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i]!;
      const payload = Buffer.from(encodeMessage(m));
      const counter = (origin.seq + i) * 2;
      this.send({ cmd: 'publish', topic: messagesTopic(m.from, m.type), payload, qos: 1, retain, dup: false, brokerId, brokerCounter: counter });
      if (m.to !== undefined) this.send({ cmd: 'publish', topic: commandsTopic(m.to, m.type), payload, qos: 1, retain: false, dup: false, brokerId, brokerCounter: counter + 1 });
    }
  }

  private send(packet: Parameters<Aedes['publish']>[0] & { brokerId?: string; brokerCounter?: number }): void {
    this.broker.publish(packet, (err) => {
      if (err) this.logger.warn({ err, topic: packet.topic }, 'mqtt fan-out failed');
    });
  }
}
