import { randomBytes } from 'node:crypto';
import type { Collection, Filter, MongoClient, ObjectId } from 'mongodb';
import { z } from 'zod';
import { decodeCursor, encodeCursor } from '../../core/cursor.js';
import { NitrogenError } from '../../core/errors.js';
import { encodeMessage, type Message } from '../../core/message.js';
import type { Page } from '../../core/ports/lifecycle.js';
import type { FeedBatch, FeedPosition, MessageQuery, Store } from '../../core/ports/store.js';
import { connect, duplicatesOf, MongoConnectionOptions, storeError } from './connection.js';
import { MongoFeed, type FeedDoc } from './mongo-feed.js';
import { earliestRecordPosition, formatRecordPosition, parseRecordPosition } from '../../core/feed-position.js';

export const MongoStoreOptions = MongoConnectionOptions.extend({
  /** Appends the group commit runs at once; each waits for its write concern. */
  appendConcurrency: z.number().int().min(1).max(64).default(4),
  /** A TTL index on `expires`, so MongoDB deletes expired messages itself (within about a minute). */
  ttlIndex: z.boolean().default(true),
});
export type MongoStoreOptions = z.output<typeof MongoStoreOptions>;

/** Messages a purge deletes at most per call while readers hold some back. */
const PURGE_SLICE = 10_000;

/** A message as stored: its fields for the indexes, the envelope as JSON text, the append batch. */
interface MessageDoc {
  /** Made by the driver; its time prefix orders the copies of an id from several senders. */
  _id?: ObjectId;
  id: string;
  /**
   * Sort key: the ISO time (fixed width, 24 characters), the id, a space, the sender: (ts, id)
   * order, the sender breaking ties (the space sorts below every id character).
   */
  k: string;
  from: string;
  to?: string;
  type: string;
  tags?: string[];
  /** For the TTL index. */
  expiresAt?: Date;
  /** The envelope's JSON text, returned unchanged (BSON would not keep every JSON value as it was). */
  e: string;
  /** The append batch that feeds it; the feed names the batches it holds. */
  w: string;
}

const iso = (time: string) => new Date(Date.parse(time)).toISOString();
const sortKey = (ts: string, id: string, from: string) => `${iso(ts)}${id} ${from}`;
const senderAndId = (m: { from: string; id: string }) => `${m.from}\u0000${m.id}`;

function toDoc(m: Message, batch: string): MessageDoc {
  const doc: MessageDoc = { id: m.id, k: sortKey(m.ts, m.id, m.from), from: m.from, type: m.type, e: encodeMessage(m), w: batch };
  if (m.to !== undefined) doc.to = m.to;
  if (m.tags?.length) doc.tags = m.tags;
  if (m.expires !== undefined) doc.expiresAt = new Date(m.expires);
  return doc;
}

/**
 * The Store on MongoDB, for several stateless instances sharing one replica set.
 *
 * `messages` holds one document per message, unique by (`id`, `from`): an insert of a key
 * already stored fails with a duplicate key and `append` treats it as stored (first copy wins).
 * Queries are keyset range scans on `k` (ts, id, sender) behind an equality or `$in` on the filtered
 * field, with one index per query shape (see `ensureIndexes`). `feed` is the numbered feed
 * (mongo-feed.ts), `checkpoints` one document per consumer. Writes use the configured write
 * concern (majority, journaled by default): `append` resolves when they are durable.
 */
export class MongoStore implements Store {
  readonly appendConcurrency: number;
  private client?: MongoClient;
  private messages!: Collection<MessageDoc>;
  private feedDocs!: Collection<FeedDoc>;
  private checkpoints!: Collection<{ _id: string; position: string }>;
  private feed!: MongoFeed;
  private readonly writer = randomBytes(6).toString('hex');
  private batches = 0;

  constructor(private readonly options: MongoStoreOptions) {
    this.appendConcurrency = options.appendConcurrency;
  }

  async start(): Promise<void> {
    const { client, db } = await connect(this.options, 'mongodb store');
    this.client = client;
    this.messages = db.collection('messages');
    this.feedDocs = db.collection('feed');
    this.checkpoints = db.collection('checkpoints');
    this.feed = new MongoFeed(this.feedDocs);
    try {
      await this.ensureIndexes();
    } catch (err) {
      throw storeError('create indexes', err);
    }
  }

  /** One index per query the REST API allows; each ends in `k`, so it also serves the sort. */
  private async ensureIndexes(): Promise<void> {
    await this.messages.createIndexes([
      // The idempotency key (sender, id), which also serves `get(id)`.
      { key: { id: 1, from: 1 }, name: 'id_from', unique: true },
      { key: { k: 1 }, name: 'k' },
      { key: { from: 1, k: 1 }, name: 'from_k' },
      { key: { to: 1, k: 1 }, name: 'to_k' },
      { key: { type: 1, k: 1 }, name: 'type_k' },
      { key: { tags: 1, k: 1 }, name: 'tags_k' },
      // With the TTL, MongoDB removes a message about a minute after `expires`; purgeExpired
      // (and the index without it) serves retention at the server's purgeInterval.
      this.options.ttlIndex ? { key: { expiresAt: 1 }, name: 'expires_ttl', expireAfterSeconds: 0 } : { key: { expiresAt: 1 }, name: 'expires' },
    ]);
    await this.feedDocs.createIndexes([{ key: { b: 1 }, name: 'batch', unique: true, partialFilterExpression: { b: { $exists: true } } }]);
  }

  async stop(): Promise<void> {
    await this.client?.close();
    this.client = undefined;
  }

  async append(batch: Message[]): Promise<void> {
    const tag = `${this.writer}-${++this.batches}`;
    const seen = new Set<string>();
    const unique = batch.filter((m) => !seen.has(senderAndId(m)) && seen.add(senderAndId(m))); // the first copy wins
    if (unique.length === 0) return;
    let taken = new Set<number>();
    try {
      await this.messages.insertMany(
        unique.map((m) => toDoc(m, tag)),
        { ordered: false },
      );
    } catch (err) {
      taken = new Set(duplicatesOf(err, 'store messages'));
    }
    const toFeed = unique.filter((_, i) => !taken.has(i));
    if (taken.size > 0)
      toFeed.push(
        ...(await this.adoptUnfed(
          unique.filter((_, i) => taken.has(i)),
          tag,
        )),
      );
    if (toFeed.length > 0) await this.feed.publish(toFeed, tag);
  }

  /**
   * The stored first copies of `repeated` whose append never reached the feed (it failed, or its
   * instance died); they are moved to batch `tag`, which is about to feed them.
   */
  private async adoptUnfed(repeated: Message[], tag: string): Promise<Message[]> {
    try {
      const docs = await this.messages.find({ $or: repeated.map((m) => ({ id: m.id, from: m.from })) }, { projection: { e: 1, w: 1 } }).toArray();
      const fed = await this.feed.fed([...new Set(docs.map((d) => d.w))]);
      const unfed = docs.filter((d) => !fed.has(d.w));
      if (unfed.length > 0) await this.messages.updateMany({ _id: { $in: unfed.map((d) => d._id) } }, { $set: { w: tag } });
      return unfed.map((d) => JSON.parse(d.e) as Message);
    } catch (err) {
      throw storeError('read stored messages', err);
    }
  }

  /** The message with this id; when several senders chose it, the one stored first. */
  async get(id: string, from?: string): Promise<Message | null> {
    try {
      const doc = await this.messages.findOne(from === undefined ? { id } : { id, from }, { projection: { e: 1 }, sort: { _id: 1 } });
      return doc ? (JSON.parse(doc.e) as Message) : null;
    } catch (err) {
      throw storeError('read a message', err);
    }
  }

  async query(q: MessageQuery): Promise<Page<Message>> {
    const desc = q.order === 'desc';
    // The range on k: since (inclusive), until (exclusive: any k of a message at `until` is
    // longer than `until` itself), and the cursor.
    const k: Record<string, string> = {};
    if (q.since) k.$gte = iso(q.since);
    if (q.until) k.$lt = iso(q.until);
    if (q.cursor) {
      const [ts, id, from] = decodeCursor(q.cursor, ['string', 'string', 'string']) as [string, string, string];
      if (!Number.isFinite(Date.parse(ts))) throw new NitrogenError('NITROGEN_ERR_VALIDATION', 'cursor: is not a cursor this server issued', { details: { field: 'cursor' } });
      const key = sortKey(ts, id, from);
      if (desc) k.$lt = k.$lt !== undefined && k.$lt < key ? k.$lt : key;
      else k.$gt = key;
    }
    const range: Filter<MessageDoc> = Object.keys(k).length ? { k } : {};
    const and: Filter<MessageDoc>[] = [range];
    if (q.from) and.push({ from: { $in: q.from } });
    if (q.to) and.push({ to: { $in: q.to } });
    if (q.type) and.push({ type: { $in: q.type } });
    if (q.tags?.length) and.push({ tags: { $all: q.tags } });
    // The range goes into each branch too, so each is one bounded scan of its own index.
    if (q.scope)
      and.push({
        $or: [
          { from: { $in: q.scope.from }, ...range },
          { to: { $in: q.scope.to }, ...range },
        ],
      });
    try {
      const docs = await this.messages.find({ $and: and }, { projection: { e: 1 }, sort: { k: desc ? -1 : 1 }, limit: q.limit + 1 }).toArray();
      const items = docs.slice(0, q.limit).map((d) => JSON.parse(d.e) as Message);
      const last = items[items.length - 1];
      return { items, next: docs.length > q.limit && last ? encodeCursor([last.ts, last.id, last.from]) : null };
    } catch (err) {
      throw storeError('query messages', err);
    }
  }

  /**
   * Deletes expired messages and, with `olderThan`, old ones; with `keepAfter`, only those
   * whose batch every reader has passed in the feed (a slice per call when there are many).
   */
  async purgeExpired(now: Date, olderThan?: Date, keepAfter: (FeedPosition | null)[] = []): Promise<number> {
    const passedBy = earliestRecordPosition(keepAfter);
    if (keepAfter.length > 0 && passedBy === null) return 0; // a reader at the very start keeps everything
    const due: Filter<MessageDoc> = olderThan ? { $or: [{ expiresAt: { $lt: now } }, { k: { $lt: olderThan.toISOString() } }] } : { expiresAt: { $lt: now } };
    try {
      let purged: number;
      if (!passedBy) purged = (await this.messages.deleteMany(due)).deletedCount;
      else {
        const candidates = await this.messages.find(due, { projection: { w: 1 }, limit: PURGE_SLICE }).toArray();
        const passed = await this.feed.passed([...new Set(candidates.map((d) => d.w))], passedBy);
        const ids = candidates.filter((d) => passed.has(d.w)).map((d) => d._id);
        purged = ids.length ? (await this.messages.deleteMany({ _id: { $in: ids } })).deletedCount : 0;
      }
      if (olderThan) await this.feedDocs.deleteMany(passedBy ? { at: { $lt: olderThan }, _id: { $lt: passedBy.seq } } : { at: { $lt: olderThan } });
      return purged;
    } catch (err) {
      throw storeError('purge messages', err);
    }
  }

  async readFeed(after: FeedPosition | null, limit: number): Promise<FeedBatch> {
    try {
      const entries = (await this.feed.after(parseRecordPosition(after), limit)).slice(0, limit);
      const last = entries[entries.length - 1];
      return { messages: entries.map((e) => e.message), position: last ? formatRecordPosition(last.position) : after };
    } catch (err) {
      throw storeError('read the feed', err);
    }
  }

  async feedLag(after: FeedPosition | null): Promise<{ count: number; oldestTs: string | null }> {
    try {
      return await this.feed.lag(parseRecordPosition(after));
    } catch (err) {
      throw storeError('read the feed', err);
    }
  }

  async getCheckpoint(consumer: string): Promise<FeedPosition | null> {
    try {
      return (await this.checkpoints.findOne({ _id: consumer }))?.position ?? null;
    } catch (err) {
      throw storeError('read a checkpoint', err);
    }
  }

  async setCheckpoint(consumer: string, position: FeedPosition): Promise<void> {
    parseRecordPosition(position);
    try {
      await this.checkpoints.replaceOne({ _id: consumer }, { position }, { upsert: true });
    } catch (err) {
      throw storeError('write a checkpoint', err);
    }
  }
}
