import type { Aedes } from 'aedes';
import type { Origin } from '../../core/bus.js';
import type { Logger } from '../../core/logger.js';
import { encodeMessage, type Message } from '../../core/message.js';
import type { MqttOriginTag } from './publish.js';
import { commandsTopic, messagesTopic } from './topics.js';

/**
 * Publishes acknowledged envelopes to MQTT subscribers, whichever transport committed them
 * (docs/api.md, "What subscribers receive"), except what aedes forwards itself: the envelope of
 * a single-message MQTT PUBLISH, on the topic it was rewritten to.
 */
export class FanOut {
  constructor(private readonly broker: Aedes, private readonly logger: Logger) {}

  /** A bus listener. */
  forward(messages: readonly Message[], origin: Origin): void {
    if (this.broker.closed) return;
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
      if (!messagesForwarded) this.publish(messagesTopic(m.from, m.type), payload, tag?.retain === true);
      if (toCommands) this.publish(commandsTopic(m.to!, m.type), payload, false);
    }
  }

  private publish(topic: string, payload: Buffer, retain: boolean): void {
    this.broker.publish({ cmd: 'publish', topic, payload, qos: 1, retain, dup: false }, (err) => {
      if (err) this.logger.warn({ err, topic }, 'mqtt fan-out failed');
    });
  }
}
