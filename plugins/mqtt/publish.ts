import type { Client, PublishPacket } from 'aedes';
import { NitrogenError } from '../../core/errors.js';
import type { IngestOptions, Ingestor } from '../../core/ingest.js';
import type { Logger } from '../../core/logger.js';
import { encodeMessage, type Message } from '../../core/message.js';
import type { Principal } from '../../core/ports/principal.js';
import { forwardAs, park } from './aedes-seam.js';
import type { RetainedLimiter } from './retained.js';
import type { SessionStore } from './session-store.js';
import type { Sessions } from './sessions.js';
import { commandsTopic, messagesTopic, parsePublishTopic, type PublishTopic } from './topics.js';

/**
 * What an MQTT commit tells the fan-out: which topic of its single message aedes forwards itself
 * (the envelope's messages topic, or the command's), and the retain flag.
 */
export interface MqttOriginTag {
  forwarded: 'messages' | 'commands' | undefined;
  retain: boolean;
}

export interface PublishDeps {
  ingestor: Ingestor;
  sessions: Sessions;
  store: SessionStore;
  retained: RetainedLimiter;
  logger: Logger;
  /** Whether this instance takes messages (`cluster.roles` holds `ingestion`). */
  ingestion: boolean;
  /**
   * With a cluster every envelope is delivered by the fan-out, which names each delivery alike
   * on every instance (fan-out.ts); aedes forwards none itself.
   */
  clustered: boolean;
}

type Done = (err?: Error | null) => void;

/**
 * PUBLISH (aedes `authorizePublish`): validates, authorizes and durably commits the message
 * before calling back, because aedes sends the PUBACK (QoS 1) or PUBREC (QoS 2) when this hook
 * calls back; then hands it to the fan-out. An error closes the connection: MQTT 3.1.1 has no
 * negative PUBACK, and a refused message is never stored.
 */
export class PublishHandler {
  private readonly lastTopic = new WeakMap<Client, { topic: string; parsed: PublishTopic | null }>();

  constructor(private readonly deps: PublishDeps) {}

  authorizePublish(client: Client | null, packet: PublishPacket, done: Done): void {
    const principal = client && this.deps.sessions.principalOf(client);
    if (!principal) {
      done(new Error('not authenticated'));
      return;
    }
    const fail = (err: unknown): void => {
      const code = this.deps.ingestor.rejected('mqtt', err);
      this.deps.logger.info({ clientId: client.id, principal: principal.id, topic: packet.topic, code, reason: (err as Error).message }, 'mqtt publish refused; closing connection');
      done(err as Error);
    };
    try {
      if (!this.deps.ingestion) throw new NitrogenError('NITROGEN_ERR_FORBIDDEN', 'this instance does not take messages (cluster.roles has no ingestion)');
      // [MQTT-2.3.1-1] a QoS 1 or 2 PUBLISH carries a non-zero packet identifier (a will has none).
      if (packet.qos > 0 && packet.messageId === 0) throw new NitrogenError('NITROGEN_ERR_VALIDATION', 'a QoS 1 or 2 PUBLISH needs a non-zero packet identifier');
      const topic = this.parseTopic(client, packet.topic);
      if (!topic) throw new NitrogenError('NITROGEN_ERR_FORBIDDEN', `cannot publish to '${packet.topic}'`);
      const own = topic.principal === principal.id;
      if (topic.kind !== 'command' && !own) {
        throw new NitrogenError('NITROGEN_ERR_SENDER_MISMATCH', `'${principal.id}' may not publish as '${topic.principal}'`);
      }
      // [MQTT-3.3.1-10] an empty retained PUBLISH clears the retained message; nothing to store.
      if (packet.retain && packet.payload.length === 0 && own) {
        const released = this.deps.retained.release(principal.id, packet.topic);
        if (released instanceof Promise) released.then(() => done(null), fail);
        else done(null);
        return;
      }
      if (packet.qos === 2 && packet.dup) {
        // A QoS 2 resend of a packet already stored: aedes answers it with PUBREC alone.
        this.deps.store.incomingGetPacket(client, packet).then(
          () => done(null),
          () => this.ingestPublish(principal, topic, packet, done, fail),
        );
        return;
      }
      this.ingestPublish(principal, topic, packet, done, fail);
    } catch (err) {
      fail(err);
    }
  }

  private ingestPublish(principal: Principal, topic: PublishTopic, packet: PublishPacket, done: Done, fail: (err: unknown) => void): void {
    try {
      const text = packet.payload.toString('utf8');
      const payload = this.deps.ingestor.parse(text);
      // Commands are not retained: a retained command would run again on every reconnect.
      if (topic.kind === 'command') packet.retain = false;
      const tag: MqttOriginTag = { forwarded: undefined, retain: packet.retain };
      const to = topic.kind === 'command' ? topic.principal : undefined;
      let options: IngestOptions;
      let messages: Message[];
      if (topic.kind === 'envelopes') {
        options = { transport: 'mqtt', type: undefined, to, originTag: tag };
        messages = this.deps.ingestor.prepare(principal, Array.isArray(payload) ? payload : [payload], options);
      } else {
        const typed = { transport: 'mqtt', type: topic.type, to, originTag: tag };
        options = typed;
        messages = this.deps.ingestor.prepareBody(principal, text, payload, typed);
      }
      const admitted = packet.retain ? this.deps.retained.admit(principal.id, messages.map(retainedEntry)) : undefined;
      // One envelope: aedes forwards (and retains) the envelope itself. Several: the fan-out
      // delivers each, and aedes forwards the parked packet to no one.
      if (messages.length === 1 && !this.deps.clustered) {
        const m = messages[0]!;
        tag.forwarded = topic.kind === 'command' ? 'commands' : 'messages';
        forwardAs(packet, tag.forwarded === 'commands' ? commandsTopic(m.to!, m.type) : messagesTopic(m.from, m.type), Buffer.from(encodeMessage(m)));
      } else {
        park(packet);
      }
      // Commit → acknowledge (aedes writes the PUBACK inside `done`) → fan out.
      const commit = () =>
        this.deps.ingestor.commit(messages, options).then(() => {
          done(null);
          this.deps.ingestor.fanOut(messages, options);
        }, fail);
      if (admitted instanceof Promise) admitted.then(commit, fail);
      else void commit();
    } catch (err) {
      fail(err);
    }
  }

  /** A device publishes to the same topic again and again: parse it once per client. */
  private parseTopic(client: Client, topic: string): PublishTopic | null {
    const cached = this.lastTopic.get(client);
    if (cached?.topic === topic) return cached.parsed;
    const parsed = parsePublishTopic(topic);
    this.lastTopic.set(client, { topic, parsed });
    return parsed;
  }
}

/** The retained message a message sets: its envelope on `devices/{from}/messages/{type}`. */
function retainedEntry(m: Message): { topic: string; bytes: number } {
  return { topic: messagesTopic(m.from, m.type), bytes: Buffer.byteLength(encodeMessage(m)) };
}
