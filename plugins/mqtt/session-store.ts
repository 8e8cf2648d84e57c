import type { Client } from 'aedes';
import MemoryPersistence from 'aedes-persistence/asyncPersistence.js';
import { Readable } from 'node:stream';
import type { MqttLimit } from './options.js';

/** A QoS 1 or 2 message held for a persistent session until its client acknowledges it. */
interface QueuedPacket {
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

interface Queue {
  packets: QueuedPacket[];
  bytes: number;
}

export interface SessionStoreLimits {
  maxQueuedMessages: number;
  maxQueuedBytes: number;
}

const EMPTY = Buffer.alloc(0);

/**
 * The broker's session state in memory (aedes-persistence's memory store), with what it lacks
 * against abusive clients: the queue of a persistent session is capped in messages and bytes
 * (a message beyond either is not queued for that session; it stays readable through
 * `GET /messages`), a QoS 2 PUBLISH awaiting PUBREL is kept without its payload (only its packet
 * id is ever read back), and a whole session can be ended from outside (a deleted principal,
 * an evicted session).
 */
export class SessionStore extends MemoryPersistence {
  private readonly queues = new Map<string, Queue>();

  constructor(
    protected readonly limits: SessionStoreLimits,
    private readonly limitHit: (limit: MqttLimit) => void,
  ) {
    super();
  }

  override async outgoingEnqueue(sub: { clientId: string }, packet: QueuedPacket): Promise<void> {
    this.enqueue(sub.clientId, packet);
  }

  override async outgoingEnqueueCombi(subs: Array<{ clientId: string }>, packet: QueuedPacket): Promise<void> {
    for (const sub of subs) this.enqueue(sub.clientId, packet);
  }

  private enqueue(clientId: string, packet: QueuedPacket): void {
    let queue = this.queues.get(clientId);
    if (!queue) this.queues.set(clientId, (queue = { packets: [], bytes: 0 }));
    const bytes = packet.payload.length;
    if (queue.packets.length >= this.limits.maxQueuedMessages) return this.limitHit('maxQueuedMessages');
    if (queue.bytes + bytes > this.limits.maxQueuedBytes) return this.limitHit('maxQueuedBytes');
    // A copy per session: the message id is assigned per client when the packet is sent.
    queue.packets.push({ cmd: packet.cmd, brokerId: packet.brokerId, brokerCounter: packet.brokerCounter, topic: packet.topic, payload: packet.payload, qos: packet.qos, retain: packet.retain, dup: packet.dup });
    queue.bytes += bytes;
  }

  /**
   * aedes records the message id it sends a queued packet with. A packet not found was not
   * queued (the queue was full): it is sent all the same, without being kept for a resend.
   */
  override async outgoingUpdate(client: Client, packet: QueuedPacket): Promise<void> {
    const queue = this.queues.get(client.id);
    if (!queue) return;
    const packets = queue.packets;
    for (let i = 0; i < packets.length; i++) {
      const queued = packets[i]!;
      if (queued.brokerId === packet.brokerId && queued.brokerCounter === packet.brokerCounter) {
        queued.messageId = packet.messageId;
        return;
      }
    }
  }

  /**
   * Removes an acknowledged packet (PUBACK carries only its message id), or one aedes will not
   * send (a full packet, matched by its broker counter).
   */
  override async outgoingClearMessageId(client: Client, packet: QueuedPacket): Promise<QueuedPacket | undefined> {
    const queue = this.queues.get(client.id);
    if (!queue) return undefined;
    const byId = packet.messageId !== undefined;
    const i = queue.packets.findIndex((q) => (byId ? q.messageId === packet.messageId : q.brokerId === packet.brokerId && q.brokerCounter === packet.brokerCounter));
    if (i < 0) return undefined;
    const [removed] = queue.packets.splice(i, 1);
    queue.bytes -= removed!.payload.length;
    if (queue.packets.length === 0) this.queues.delete(client.id);
    return removed!;
  }

  override outgoingStream(client: Client): Readable {
    return Readable.from([...(this.queues.get(client.id)?.packets ?? [])]);
  }

  /** A clean session starts with nothing queued [MQTT-3.1.2-6]. */
  override async cleanSubscriptions(client: Client): Promise<void> {
    this.queues.delete(client.id);
    await super.cleanSubscriptions(client);
  }

  override async incomingStorePacket(client: Client, packet: QueuedPacket): Promise<void> {
    await super.incomingStorePacket(client, { ...packet, payload: EMPTY });
  }

  /** Forgets a session entirely: subscriptions, queue, QoS 2 state and will. */
  async endSession(clientId: string): Promise<void> {
    const client = { id: clientId } as Client;
    this.queues.delete(clientId);
    await super.cleanSubscriptions(client);
    await this.cleanIncoming(client);
    await this.delWill(client);
  }
}
