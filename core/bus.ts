import type { Message } from './message.js';

/** Who committed a batch: transports use it to skip deliveries they already made themselves. */
export interface Origin {
  transport: string;
  /** Transport-specific marker, such as the MQTT topic aedes already forwards the envelope on. */
  tag?: unknown;
}

export type BusListener = (messages: readonly Message[], origin: Origin) => void;

/**
 * In-process fan-out of committed messages to live subscribers (MQTT, SSE, commands).
 * Listeners run synchronously when a transport fans out what it has acknowledged
 * (`Ingestor.fanOut`) and must not throw; a listener that does is reported through
 * `onListenerError` and the others still run.
 */
export class MessageBus {
  private readonly listeners = new Set<BusListener>();

  constructor(private readonly onListenerError: (err: unknown) => void = () => {}) {}

  subscribe(listener: BusListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  publish(messages: readonly Message[], origin: Origin): void {
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
