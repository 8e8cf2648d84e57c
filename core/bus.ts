import type { Message } from './message.js';
import type { Cluster, InstanceIdentity, RemoteBatch } from './ports/cluster.js';

/** Who committed a batch: transports use it to skip deliveries they already made themselves. */
export interface Origin {
  transport: string;
  /** Transport-specific marker, such as the MQTT topic aedes already forwards the envelope on. */
  tag?: unknown;
  /** The instance that committed the batch, and the run and sequence number it gave its first message. */
  instance: string;
  run: string;
  seq: number;
}

export type BusListener = (messages: readonly Message[], origin: Origin) => void;

/**
 * Fan-out of committed messages to live subscribers (MQTT, SSE, commands) and sink runners.
 * Listeners run synchronously when a transport fans out what it has acknowledged
 * (`Ingestor.fanOut`) and must not throw; a listener that does is reported through
 * `onListenerError` and the others still run.
 *
 * With a cluster (core/ports/cluster.ts), what this instance publishes goes to the other
 * instances after its own listeners ran, and what they committed reaches these listeners with
 * their origin (`transport: 'cluster'`): each instance delivers to its own subscribers, and no
 * instance delivers twice what it committed. Every message gets a sequence number of this
 * instance's run, which names its deliveries on every instance (MQTT queues them by it).
 */
export class MessageBus {
  private readonly listeners = new Set<BusListener>();
  private cluster?: Cluster;
  private nextSeq = 1;

  constructor(
    private readonly instance: InstanceIdentity = { id: 'local', run: 'local' },
    private readonly onListenerError: (err: unknown) => void = () => {},
  ) {}

  subscribe(listener: BusListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Sends what this instance publishes to the other instances and, with `receive`, delivers what
   * they publish (an instance with no live subscribers needs none of it).
   */
  connect(cluster: Cluster, receive: boolean): void {
    this.cluster = cluster;
    if (!receive) return;
    cluster.onMessages((batch: RemoteBatch) => {
      this.deliver(batch.messages, { transport: 'cluster', instance: batch.instance, run: batch.run, seq: batch.seq });
    });
  }

  publish(messages: readonly Message[], origin: Pick<Origin, 'transport' | 'tag'>): void {
    const seq = this.nextSeq;
    this.nextSeq += messages.length;
    this.deliver(messages, { transport: origin.transport, tag: origin.tag, instance: this.instance.id, run: this.instance.run, seq });
    this.cluster?.publish(messages, seq);
  }

  private deliver(messages: readonly Message[], origin: Origin): void {
    for (const listener of this.listeners) {
      try {
        listener(messages, origin);
      } catch (err) {
        this.onListenerError(err);
      }
    }
  }

  get size(): number {
    return this.listeners.size;
  }
}
