import type { Message } from '../message.js';
import type { Lifecycle } from './lifecycle.js';
import type { FeedRecord } from './store.js';

/**
 * The Sink port: delivery to a downstream pipeline.
 *
 * - `send(batch)` resolves only when the downstream accepted every message of the batch
 *   (for AMQP: the `accepted` outcome, AMQP 1.0 §3.4.2).
 * - It rejects with NITROGEN_ERR_SINK_RETRYABLE when trying again later may succeed (peer
 *   down, credit timeout, `released`), or NITROGEN_ERR_SINK_REJECTED when the downstream
 *   refused a message for good (`rejected`); `details.index` then names that message, and
 *   every message before it in the batch was accepted.
 * - Delivery is at-least-once: after a failure the same messages may be sent again.
 */
export interface Sink extends Lifecycle {
  readonly name: string;
  send(batch: Message[]): Promise<void>;
  /**
   * `send` for records as the store keeps them (envelope JSON bytes untouched), with the same
   * contract. Optional: a sink that has it forwards without parsing or re-encoding a message.
   */
  sendRecords?(batch: FeedRecord[]): Promise<void>;
}

/** Which messages a sink receives; an absent field matches everything. */
export interface SinkFilter {
  type?: string[];
  from?: string[];
}
