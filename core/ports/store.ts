import type { Message } from '../message.js';
import type { Lifecycle, Page } from './lifecycle.js';

export interface MessageQuery {
  from?: string[];
  to?: string[];
  type?: string[];
  /** The message must hold every one of these tags. */
  tags?: string[];
  /** Inclusive lower bound on `ts` (ISO-8601). */
  since?: string;
  /** Exclusive upper bound on `ts` (ISO-8601). */
  until?: string;
  /**
   * Visibility: when set, only messages whose `from` is in `from` or whose `to` is in `to`.
   * The core sets it from the caller's permissions; stores only apply it.
   */
  scope?: { from: string[]; to: string[] };
  order: 'asc' | 'desc';
  limit: number;
  cursor?: string;
}

/** A position in a store's commit-ordered feed; opaque outside the store that made it. */
export type FeedPosition = string;

export interface FeedBatch {
  messages: Message[];
  /** Position after the last message returned; pass it to the next read. Null only when nothing was ever read. */
  position: FeedPosition | null;
}

/**
 * A message of the feed as stored: the fields a sink maps and filters on, and the envelope's
 * JSON bytes untouched, so that forwarding needs neither a JSON parse nor a re-encode.
 */
export interface FeedRecord {
  id: string;
  from: string;
  type: string;
  to: string | null;
  /** `ts` in ms since the epoch. */
  ts: number;
  /** `expires` in ms since the epoch; NaN when the message has none. */
  expires: number;
  /** The envelope as UTF-8 JSON (encodeMessage's text): owned by the reader, not a view of store memory. */
  json: Buffer;
}

export interface FeedRecordBatch {
  records: FeedRecord[];
  /** As FeedBatch.position. */
  position: FeedPosition | null;
}

/**
 * The Store port: durable message storage.
 *
 * Guarantees every adapter keeps (checked by test/conformance/store.ts):
 * - `append(batch)` resolves only once every message of the batch is durable (for an
 *   embedded store: committed and fsynced). It is idempotent by sender and id: a message whose
 *   (`from`, `id`) is already stored is skipped, not duplicated and not an error. Scoping the
 *   key by sender keeps one principal's client-chosen ids from ever shadowing another's.
 * - Read-your-writes: once `append` resolved, `get`, `query` and `readFeed` see the messages.
 * - `query` orders by (`ts`, `id`, `from`) ascending or descending — a total order, since
 *   (`from`, `id`) is unique; following `next` visits every matching message once, also while
 *   other messages are being appended.
 * - `purgeExpired(now, olderThan?, keepAfter?)` deletes messages whose `expires` is before
 *   `now`, and when `olderThan` is given those whose `ts` is before it; it returns how many it
 *   deleted. Messages after any position in `keepAfter` are kept, expired or not: a feed
 *   consumer (a sink that is down) has yet to read them. A null position keeps everything.
 * - `readFeed` returns messages in commit order after a position: the durable feed sinks read
 *   from. Checkpoints are stored durably per consumer name.
 * - Driver failures surface as NITROGEN_ERR_STORE with the driver error as `cause`.
 */
export interface Store extends Lifecycle {
  /** Appends the group commit may run at once: 1 (default) for a single writer, more for networked stores. */
  readonly appendConcurrency?: number;
  append(batch: Message[]): Promise<void>;
  /** The message with this id from `from`; without `from`, the first stored with this id. */
  get(id: string, from?: string): Promise<Message | null>;
  query(query: MessageQuery): Promise<Page<Message>>;
  purgeExpired(now: Date, olderThan?: Date, keepAfter?: (FeedPosition | null)[]): Promise<number>;
  readFeed(after: FeedPosition | null, limit: number): Promise<FeedBatch>;
  /** `readFeed` as stored records (same messages, same positions). Optional: sinks fall back to `readFeed`. */
  readFeedRecords?(after: FeedPosition | null, limit: number): Promise<FeedRecordBatch>;
  /** How far a consumer at `after` is behind: messages after it, and the commit time of the oldest. Optional: used for metrics. */
  feedLag?(after: FeedPosition | null): Promise<{ count: number; oldestTs: string | null }>;
  getCheckpoint(consumer: string): Promise<FeedPosition | null>;
  setCheckpoint(consumer: string, position: FeedPosition): Promise<void>;
}
