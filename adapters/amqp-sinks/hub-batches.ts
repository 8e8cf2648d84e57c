// Event Hubs batches: many events in one AMQP message of message-format 0x80013700, each
// event an encoded AMQP message in its own data section (the format the Azure SDKs send;
// Event Hubs "AMQP 1.0 protocol guide", batching). A batch message carries one partition key,
// in its message annotations as on each of its events, so events are grouped by key first.
import type { Message } from '../../core/message.js';
import { encodeMessage, Writer, type Message as AmqpMessage } from '@nitrogen/amqp';
import type { FeedRecord } from '../../core/ports/store.js';
import { encodeRecord, toAmqpMessage } from './mapping.js';

export const BATCH_FORMAT = 0x80013700;
export const PARTITION_KEY = 'x-opt-partition-key';

interface HubBatch {
  /** Positions in the sink's batch of the events it holds, in order. */
  indexes: number[];
  message: AmqpMessage;
}

export interface Packed {
  batches: HubBatch[];
  /** The first event too large for the link on its own, with its encoded size; nothing from it on is packed. */
  tooLarge?: { index: number; size: number };
}

/** A data section holding `n` bytes: descriptor, then vbin8 or vbin32 (AMQP 1.0 §1.6.19, §3.2.6). */
const sectionSize = (n: number): number => 3 + (n <= 255 ? 2 : 5) + n;

function encoded(message: AmqpMessage, w: Writer): Buffer {
  w.reset();
  encodeMessage(w, message);
  return w.toBuffer();
}

function encodedRecord(r: FeedRecord, annotations: Record<string, unknown> | undefined, w: Writer): Buffer {
  w.reset();
  encodeRecord(w, r, false, annotations);
  return w.toBuffer();
}

/**
 * Packs events into batch messages of at most `maxBytes` encoded bytes, keeping the order of
 * events within each partition key (`from` when `byDevice`, else none: the hub spreads them).
 * Stops at the first event that fits in no batch, so that every event before it can be sent.
 */
export function packEvents(events: ReadonlyArray<Message | FeedRecord>, byDevice: boolean, maxBytes: number): Packed {
  const w = new Writer(64 * 1024);
  const groups = new Map<string | undefined, { annotations?: Record<string, unknown>; overhead: number; open?: { batch: HubBatch; size: number } }>();
  const batches: HubBatch[] = [];
  for (let i = 0; i < events.length; i++) {
    const m = events[i]!;
    const key = byDevice ? m.from : undefined;
    let group = groups.get(key);
    if (!group) {
      const annotations = key === undefined ? undefined : { [PARTITION_KEY]: key };
      // The envelope without events: its annotations section and nothing else.
      const overhead = encoded({ messageAnnotations: annotations, bodyType: 'data', body: [] }, w).length;
      group = { annotations, overhead };
      groups.set(key, group);
    }
    const event = 'json' in m ? encodedRecord(m, group.annotations, w) : encoded(toAmqpMessage(m, false, group.annotations), w);
    const size = sectionSize(event.length);
    if (group.overhead + size > maxBytes) return { batches, tooLarge: { index: i, size: group.overhead + size } };
    if (!group.open || group.open.size + size > maxBytes) {
      const batch: HubBatch = { indexes: [], message: { messageAnnotations: group.annotations, bodyType: 'data', body: [] } };
      batches.push(batch);
      group.open = { batch, size: group.overhead };
    }
    group.open.batch.indexes.push(i);
    (group.open.batch.message.body as Buffer[]).push(event);
    group.open.size += size;
  }
  return { batches };
}
