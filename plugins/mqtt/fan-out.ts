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
    for (const m of messages) {
      // Encoded only when needed: for MQTT telemetry aedes already forwards the envelope itself.
      let payload: Buffer | undefined;
      const encoded = () => (payload ??= Buffer.from(encodeMessage(m)));
      this.publish(messagesTopic(m.from, m.type), encoded, tag);
      if (m.to !== undefined) this.publish(commandsTopic(m.to, m.type), encoded, tag);
    }
  }

  private publish(topic: string, encoded: () => Buffer, tag: MqttOriginTag | undefined): void {
    if (topic === tag?.forwardedTopic) return;
    const payload = encoded();
    // Retained only on the messages topic: a command is never retained.
    const retain = tag?.retain === true && topic.includes('/messages/');
    this.broker.publish({ cmd: 'publish', topic, payload, qos: 1, retain, dup: false }, (err) => {
      if (err) this.logger.warn({ err, topic }, 'mqtt fan-out failed');
    });
  }
}
