import { MongoBulkWriteError, type Collection } from 'mongodb';
import { BatchingWriter } from '../../core/batching-writer.js';
import { encodeMessage, type Message } from '../../core/message.js';
import { DUPLICATE_KEY, storeError } from './connection.js';
import type { RecordPosition } from '../../core/feed-position.js';

/** Records stay far below the 16 MiB document limit. */
const RECORD_CHARS = 1_000_000;
const MAX_CONFLICTS = 50;

/** A feed record: its number, when it was written, the envelopes' JSON and, on a batch's last record, the batch. */
export interface FeedDoc {
  _id: number;
  at: Date;
  items: string[];
  b?: string;
}

interface Entry {
  items: string[];
  batch: string;
}

function recordsOf(entries: Entry[]): Array<Omit<FeedDoc, '_id' | 'at'>> {
  const records: Array<Omit<FeedDoc, '_id' | 'at'>> = [];
  for (const entry of entries) {
    let items: string[] = [];
    let chars = 0;
    for (const item of entry.items) {
      if (items.length > 0 && chars + item.length > RECORD_CHARS) {
        records.push({ items });
        items = [];
        chars = 0;
      }
      items.push(item);
      chars += item.length;
    }
    records.push({ items, b: entry.batch });
  }
  return records;
}

/**
 * The commit-ordered feed on MongoDB: records numbered 1, 2, 3, … by `_id`, with no holes
 * while they are written, for the same reason as on Azure Tables: an instance inserts record
 * n+1 only after it saw record n (its own insert, the highest `_id`, or a duplicate-key
 * error), and inserts its records in order (`ordered: true`), one insert at a time. A reader
 * that sees record n therefore sees every record below it, and never passes a commit in flight.
 * Records hold the envelopes themselves, so what sinks read never depends on message
 * documents that retention (or the TTL index) may have deleted.
 */
export class MongoFeed {
  private readonly writer = new BatchingWriter<Entry>(async (entries) => {
    try {
      await this.write(recordsOf(entries));
    } catch (err) {
      throw storeError('write the feed', err);
    }
  });
  private head?: number;

  constructor(private readonly feed: Collection<FeedDoc>) {}

  /** Resolves once records holding `messages` are durable in the feed. */
  publish(messages: Message[], batch: string): Promise<void> {
    return this.writer.push({ items: messages.map(encodeMessage), batch });
  }

  private async write(records: Array<Omit<FeedDoc, '_id' | 'at'>>): Promise<void> {
    const at = new Date();
    let pending = records;
    for (let conflicts = 0; pending.length > 0; conflicts++) {
      this.head ??= await this.readHead();
      const docs = pending.map((r, i) => ({ _id: this.head! + 1 + i, at, ...r }));
      try {
        await this.feed.insertMany(docs, { ordered: true });
        this.head += docs.length;
        return;
      } catch (err) {
        // Records before the failed one are in; another instance took the next number.
        const first = err instanceof MongoBulkWriteError ? ([] as { code: number; index: number }[]).concat(err.writeErrors as never)[0] : undefined;
        if (!first || first.code !== DUPLICATE_KEY || (err instanceof MongoBulkWriteError && err.result.getWriteConcernError()) || conflicts >= MAX_CONFLICTS) throw err;
        pending = pending.slice(first.index);
        this.head = undefined;
      }
    }
  }

  private async readHead(): Promise<number> {
    const last = await this.feed.find({}, { sort: { _id: -1 }, limit: 1, projection: { _id: 1 } }).next();
    return last?._id ?? 0;
  }

  /** Messages after `position` and the commit time of the oldest, counted by the server. */
  async lag(position: RecordPosition): Promise<{ count: number; oldestTs: string | null }> {
    const records = this.feed.aggregate<{ _id: number; at: Date; n: number }>([{ $match: { _id: { $gte: position.seq } } }, { $sort: { _id: 1 } }, { $project: { at: 1, n: { $size: '$items' } } }]);
    let count = 0;
    let oldestTs: string | null = null;
    for await (const record of records) {
      const unread = record._id === position.seq ? record.n - position.index - 1 : record.n;
      if (unread <= 0) continue;
      count += unread;
      oldestTs ??= record.at.toISOString();
    }
    return { count, oldestTs };
  }

  /** The batches among `batches` that reached the feed. */
  async fed(batches: string[]): Promise<Set<string>> {
    return new Set((await this.feed.find({ b: { $in: batches } }, { projection: { b: 1 } }).toArray()).map((r) => r.b!));
  }

  /** The batches among `batches` whose messages every reader at `position` has passed. */
  async passed(batches: string[], position: RecordPosition): Promise<Set<string>> {
    const records = this.feed.aggregate<{ _id: number; b: string; n: number }>([{ $match: { b: { $in: batches }, _id: { $lte: position.seq } } }, { $project: { b: 1, n: { $size: '$items' } } }]);
    const passed = new Set<string>();
    for await (const r of records) if (r._id < position.seq || r.n - 1 <= position.index) passed.add(r.b);
    return passed;
  }

  /** The messages after `position` in feed order, each with its position; at least `limit` when there are. */
  async after(position: RecordPosition, limit: number): Promise<Array<{ message: Message; position: RecordPosition }>> {
    const out: Array<{ message: Message; position: RecordPosition }> = [];
    const cursor = this.feed.find({ _id: { $gte: position.seq } }, { sort: { _id: 1 }, batchSize: 20 });
    try {
      for await (const record of cursor) {
        for (let index = record._id === position.seq ? position.index + 1 : 0; index < record.items.length; index++) {
          out.push({ message: JSON.parse(record.items[index]!) as Message, position: { seq: record._id, index } });
        }
        if (out.length >= limit) break;
      }
    } finally {
      await cursor.close();
    }
    return out;
  }
}
