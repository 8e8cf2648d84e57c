import type { Client } from 'aedes';
import { Readable } from 'node:stream';
import { QlobberTrue } from 'qlobber';
import QlobberSub from 'qlobber/aedes/qlobber-sub.js';
import type { Logger } from '../../core/logger.js';
import type { Cluster } from '../../core/ports/cluster.js';
import type { QueuedDelivery, SessionState, Subscription } from '../../core/ports/session-state.js';
import type { MqttLimit } from './options.js';
import { SessionStore, type SessionStoreLimits } from './session-store.js';

const QLOBBER = { separator: '/', wildcard_one: '+', wildcard_some: '#', match_empty_levels: true };
/** Cluster event: a client's persistent subscriptions changed on some instance. */
export const SUBSCRIPTIONS_CHANGED = 'mqtt.subscriptions';

interface Packet {
  cmd: string;
  brokerId: string;
  brokerCounter: number;
  topic: string;
  payload: Buffer;
  qos: number;
  retain: boolean;
  dup: boolean;
  messageId?: number;
}

interface SubscriptionsChanged {
  clientId: string;
  added?: Subscription[];
  removed?: string[];
  /** The session ended: every subscription of the client is gone. */
  ended?: boolean;
}

/** Names a delivery on every instance: `n:{instance}:{run}` and a number of that run (fan-out.ts). */
function deliveryKey(packet: { brokerId: string; brokerCounter: number }): string {
  return `${packet.brokerId}@${packet.brokerCounter}`;
}

/**
 * The broker's session state shared by every instance (core/ports/session-state.ts), for a
 * cluster: subscriptions of persistent sessions, their queues of QoS 1 and 2 messages, and
 * retained messages live in the shared state, with the same caps as in memory, so a client
 * that reconnects through another instance resumes its session. What belongs to one
 * connection stays in memory (session-store.ts): QoS 2 PUBLISHes awaiting PUBREL and wills.
 *
 * Who queues what: the instance that committed a message queues it for every matching
 * persistent session, wherever it is connected (aedes does so on the publishing broker); the
 * others deliver it live to the clients they hold and record its packet identifier against
 * that queued entry, which both name alike (`deliveryKey`). To match a topic without a round
 * trip, every instance keeps all persistent subscriptions in a trie, loaded at start and kept
 * current by cluster events (reloaded when the bus comes back from an outage).
 */
export class SharedSessionStore extends SessionStore {
  private readonly trie = new QlobberSub(QLOBBER);
  /** The trie's content per client, to take a client's entries out of it. */
  private readonly byClient = new Map<string, Map<string, number>>();

  constructor(
    limits: SessionStoreLimits,
    private readonly queueLimitHit: (limit: MqttLimit) => void,
    private readonly state: SessionState,
    private readonly cluster: Cluster,
    /** The brokerId of the deliveries this instance's fan-out makes of what it committed. */
    private readonly localDeliveries: string,
    private readonly logger: Logger,
  ) {
    super(limits, queueLimitHit);
  }

  override async setup(broker: unknown): Promise<void> {
    await super.setup(broker);
    await this.reload();
  }

  /** Loads every persistent subscription of the deployment into the trie. */
  async reload(): Promise<void> {
    const all = await this.state.allSubscriptions();
    this.trie.clear();
    this.byClient.clear();
    for (const sub of all) this.track(sub.clientId, [sub]);
  }

  /** A cluster event: another instance changed a client's persistent subscriptions. */
  applyRemote(data: unknown): void {
    const change = data as SubscriptionsChanged | null;
    if (typeof change?.clientId !== 'string') return;
    if (change.ended) this.untrack(change.clientId, undefined);
    if (Array.isArray(change.removed)) this.untrack(change.clientId, change.removed);
    if (Array.isArray(change.added)) this.track(change.clientId, change.added);
  }

  private track(clientId: string, subs: readonly Subscription[]): void {
    let topics = this.byClient.get(clientId);
    if (!topics) this.byClient.set(clientId, (topics = new Map<string, number>()));
    for (const { topic, qos } of subs) {
      if (topics.has(topic)) this.trie.remove(topic, { clientId, topic });
      topics.delete(topic);
      // QoS 0 subscriptions queue nothing: aedes matches the trie only to queue.
      if (qos > 0) {
        this.trie.add(topic, { clientId, topic, qos });
        topics.set(topic, qos);
      }
    }
    if (topics.size === 0) this.byClient.delete(clientId);
  }

  private untrack(clientId: string, removed: readonly string[] | undefined): void {
    const topics = this.byClient.get(clientId);
    if (!topics) return;
    for (const topic of removed ?? [...topics.keys()]) {
      if (topics.delete(topic)) this.trie.remove(topic, { clientId, topic });
    }
    if (topics.size === 0) this.byClient.delete(clientId);
  }

  private announce(change: SubscriptionsChanged): void {
    // Lost while the bus is down; every instance reloads the trie when it returns.
    this.cluster.broadcast(SUBSCRIPTIONS_CHANGED, change).catch((err: unknown) => this.logger.debug({ err }, 'subscription change not announced'));
  }

  override async addSubscriptions(client: Client, subs: Subscription[]): Promise<void> {
    const plain = subs.map(({ topic, qos }) => ({ topic, qos }));
    await this.state.addSubscriptions(client.id, plain);
    this.track(client.id, plain);
    this.announce({ clientId: client.id, added: plain });
  }

  override async removeSubscriptions(client: Client, topics: string[]): Promise<void> {
    await this.state.removeSubscriptions(client.id, topics);
    this.untrack(client.id, topics);
    this.announce({ clientId: client.id, removed: topics });
  }

  override async subscriptionsByClient(client: Client): Promise<Subscription[]> {
    return this.state.subscriptions(client.id);
  }

  override async subscriptionsByTopic(topic: string): Promise<Array<{ clientId: string; topic: string; qos: number }>> {
    return this.trie.match(topic);
  }

  override async countOffline(): Promise<{ subsCount: number; clientsCount: number }> {
    return { subsCount: this.trie.subscriptionsCount, clientsCount: this.byClient.size };
  }

  /** A clean session starts with nothing [MQTT-3.1.2-6]. */
  override async cleanSubscriptions(client: Client): Promise<void> {
    const topics = (await this.state.subscriptions(client.id)).map((s) => s.topic);
    if (topics.length > 0) await this.removeSubscriptions(client, topics);
    await this.state.dropQueue(client.id);
  }

  override async outgoingEnqueue(sub: { clientId: string }, packet: Packet): Promise<void> {
    await this.outgoingEnqueueCombi([sub], packet);
  }

  override async outgoingEnqueueCombi(subs: Array<{ clientId: string }>, packet: Packet): Promise<void> {
    if (subs.length === 0) return;
    // Another instance's message: it queued it already, when it committed it.
    if (packet.brokerId.startsWith('n:') && packet.brokerId !== this.localDeliveries) return;
    const delivery: QueuedDelivery = { key: deliveryKey(packet), topic: packet.topic, payload: packet.payload, qos: packet.qos };
    const full = await this.state.enqueue(
      subs.map((s) => s.clientId),
      delivery,
      { maxMessages: this.limits.maxQueuedMessages, maxBytes: this.limits.maxQueuedBytes },
    );
    for (const { limit } of full) this.queueLimitHit(limit === 'maxMessages' ? 'maxQueuedMessages' : 'maxQueuedBytes');
  }

  /** A delivery not queued (its queue was full, or its origin's write is not there yet) is sent all the same. */
  override async outgoingUpdate(client: Client, packet: Packet): Promise<void> {
    if (packet.messageId === undefined || !packet.brokerId) return;
    await this.state.sent(client.id, deliveryKey(packet), packet.messageId);
  }

  override async outgoingClearMessageId(client: Client, packet: Packet): Promise<Packet | undefined> {
    const by = packet.messageId !== undefined ? { messageId: packet.messageId } : packet.brokerId ? { key: deliveryKey(packet) } : undefined;
    if (!by) return undefined;
    const removed = await this.state.acknowledge(client.id, by);
    return removed && toPacket(removed);
  }

  override outgoingStream(client: Client): Readable {
    const state = this.state;
    return Readable.from(
      (async function* queued() {
        for (const delivery of await state.queued(client.id)) yield toPacket(delivery);
      })(),
    );
  }

  override async storeRetained(packet: { topic: string; payload: Buffer }): Promise<void> {
    await this.state.retain(packet.topic, packet.payload);
  }

  override createRetainedStreamCombi(patterns: string[]): Readable {
    const state = this.state;
    return Readable.from(
      (async function* retained() {
        const seen = new Set<string>();
        for (const pattern of patterns) {
          const matcher = new QlobberTrue(QLOBBER).add(pattern);
          const wildcard = pattern.search(/[+#]/);
          for (const { topic, payload } of await state.retainedUnder(wildcard < 0 ? pattern : pattern.slice(0, wildcard))) {
            if (seen.has(topic) || !matcher.test(topic)) continue;
            seen.add(topic);
            yield { cmd: 'publish', topic, payload, qos: 1, retain: true, dup: false };
          }
        }
      })(),
    );
  }

  override createRetainedStream(pattern: string): Readable {
    return this.createRetainedStreamCombi([pattern]);
  }

  override async endSession(clientId: string): Promise<void> {
    await super.endSession(clientId);
    await this.state.endSession(clientId);
    this.forget([clientId]);
  }

  /** Sessions ended in the shared state (evicted, or of a deleted principal): out of every instance's trie. */
  forget(clientIds: readonly string[]): void {
    for (const clientId of clientIds) {
      this.untrack(clientId, undefined);
      this.announce({ clientId, ended: true });
    }
  }
}

function toPacket(delivery: QueuedDelivery): Packet {
  const at = delivery.key.lastIndexOf('@');
  const packet: Packet = { cmd: 'publish', brokerId: delivery.key.slice(0, at), brokerCounter: Number(delivery.key.slice(at + 1)), topic: delivery.topic, payload: delivery.payload, qos: delivery.qos, retain: false, dup: false };
  if (delivery.messageId !== undefined) packet.messageId = delivery.messageId;
  return packet;
}
