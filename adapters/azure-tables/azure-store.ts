import { odata } from '@azure/data-tables';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { encodeMessage, type Message } from '../../core/message.js';
import type { Page } from '../../core/ports/lifecycle.js';
import type { FeedBatch, FeedPosition, MessageQuery, Store } from '../../core/ports/store.js';
import { AzureConnectionOptions, createTables, mapLimit, openTable, requireCredentials, storeError, type Table } from './connection.js';
import { checkEntitySize, deleteAll, getOrNull, insertNew, readText, textProperties, upsertAll, type Entity } from './entities.js';
import { AzureFeed } from './feed.js';
import { checkMessageId, escapeKey, fieldsOfRow, isStorableId, indexRows, messageKey, messagePartition, SHARDS, streams, timeKey, type IndexRow } from './keys.js';
import { runQuery } from './query.js';
import { earliestRecordPosition, formatRecordPosition, parseRecordPosition } from '../../core/feed-position.js';

export const AzureStoreOptions = AzureConnectionOptions.extend({
  /** Appends the group commit runs at once; each is a few round trips to the service. */
  appendConcurrency: z.number().int().min(1).max(64).default(8),
}).superRefine(requireCredentials);
export type AzureStoreOptions = z.output<typeof AzureStoreOptions>;

const READS_IN_FLIGHT = 32;
/** Partition of `<prefix>Feed` holding one row per consumer's checkpoint. */
const CHECKPOINTS = 'checkpoint';
const PURGE_SLICE = 10_000;

type MessageRow = Entity & { w: string; timestamp?: string };

const parseRow = (row: Record<string, unknown>) => JSON.parse(readText(row, 'm')) as Message;
const senderAndId = (m: { from: string; id: string }) => `${m.from}\u0000${m.id}`;

/**
 * The Store on Azure Tables, for several stateless instances sharing one storage account.
 *
 * Tables `<prefix>Messages` (message rows and index rows) and `<prefix>Feed` (the feed and
 * checkpoints). An append writes, in order: the message rows (an insert per (sender, id), which
 * is what makes append idempotent: a taken key is a message already stored), the index rows,
 * then a feed record; it resolves when all three are durable. A message whose first copy was
 * written by an append that never reached the feed (it failed or its instance died) is indexed
 * and fed by the append that repeats it. Key design: keys.ts; feed: feed.ts; queries: query.ts.
 */
export class AzureTablesStore implements Store {
  readonly appendConcurrency: number;
  private messages!: Table;
  private feedTable!: Table;
  private feed!: AzureFeed;
  /** Names this instance's append batches in the feed markers. */
  private readonly writer = randomBytes(6).toString('hex');
  private batches = 0;

  constructor(private readonly options: AzureStoreOptions) {
    this.appendConcurrency = options.appendConcurrency;
  }

  async start(): Promise<void> {
    this.messages = openTable(this.options, 'Messages', 'azure-tables store');
    this.feedTable = openTable(this.options, 'Feed', 'azure-tables store');
    await createTables([this.messages, this.feedTable], this.options.connectTimeout, 'azure-tables store');
    this.feed = new AzureFeed(this.feedTable.client);
  }

  /** Nothing to release: requests are plain HTTPS; an append in flight finishes on its own. */
  async stop(): Promise<void> {}

  async append(batch: Message[]): Promise<void> {
    const tag = `${this.writer}-${++this.batches}`;
    const seen = new Set<string>();
    const unique = batch.filter((m) => !seen.has(senderAndId(m)) && seen.add(senderAndId(m))); // the first copy wins
    const rows = unique.map((m) => {
      checkMessageId(m.id);
      const row: Entity = { ...messageKey(m.from, m.id), w: tag, ...textProperties('m', encodeMessage(m)) };
      checkEntitySize(row, `message '${m.id}'`);
      return row;
    });
    const taken = new Set((await insertNew(this.messages.client, rows, 'store messages')).map((row) => row.rowKey));
    const toIndex = unique.filter((m) => !taken.has(messageKey(m.from, m.id).rowKey));
    if (taken.size > 0)
      toIndex.push(
        ...(await this.adoptUnfed(
          unique.filter((m) => taken.has(messageKey(m.from, m.id).rowKey)),
          tag,
        )),
      );
    if (toIndex.length === 0) return;
    await upsertAll(
      this.messages.client,
      toIndex.flatMap((m) => indexRows(m, tag, encodeMessage(m))),
      'index messages',
    );
    await this.feed.publish(toIndex, tag);
  }

  /**
   * The stored first copies of `repeated` whose append never reached the feed; their rows are
   * moved to batch `tag`, which is about to feed them, so retention finds them in the feed.
   */
  private async adoptUnfed(repeated: Message[], tag: string): Promise<Message[]> {
    const rows = (await mapLimit(repeated, READS_IN_FLIGHT, (m) => this.messageRow(m.from, m.id))).filter((row) => row !== null);
    const fed = new Map<string, boolean>();
    for (const batch of new Set(rows.map((row) => row.w))) fed.set(batch, (await this.feed.locate(batch)) !== null);
    const unfed = rows.filter((row) => !fed.get(row.w));
    await upsertAll(
      this.messages.client,
      unfed.map((row) => ({ partitionKey: row.partitionKey, rowKey: row.rowKey, ...textProperties('m', readText(row, 'm')), w: tag })),
      'adopt messages',
    );
    return unfed.map(parseRow);
  }

  private messageRow(from: string, id: string): Promise<MessageRow | null> {
    const key = messageKey(from, id);
    return getOrNull<MessageRow>(this.messages.client, key.partitionKey, key.rowKey, 'read a message');
  }

  /** The message with this id; when several senders chose it, the one stored first. */
  async get(id: string, from?: string): Promise<Message | null> {
    if (!isStorableId(id)) return null; // no such id can have been stored
    if (from !== undefined) {
      const row = await this.messageRow(from, id);
      return row ? parseRow(row) : null;
    }
    const filter = odata`PartitionKey eq ${messagePartition(id)} and RowKey gt ${id + ' '} and RowKey lt ${id + '!'}`;
    let first: MessageRow | undefined;
    try {
      for await (const row of this.messages.client.listEntities<MessageRow>({ queryOptions: { filter } })) {
        if (!first || row.timestamp! < first.timestamp!) first = row;
      }
    } catch (err) {
      throw storeError('read a message', err);
    }
    return first ? parseRow(first) : null;
  }

  private async fetch(keys: Array<{ from: string; id: string }>): Promise<Map<string, Message>> {
    const found = new Map<string, Message>();
    await mapLimit(keys, READS_IN_FLIGHT, async (key) => {
      const row = await this.messageRow(key.from, key.id);
      if (row) found.set(senderAndId(key), parseRow(row));
    });
    return found;
  }

  query(query: MessageQuery): Promise<Page<Message>> {
    return runQuery(this.messages.client, query, (keys) => this.fetch(keys));
  }

  async readFeed(after: FeedPosition | null, limit: number): Promise<FeedBatch> {
    const entries = (await this.feed.after(parseRecordPosition(after), limit)).slice(0, limit);
    const last = entries[entries.length - 1];
    return { messages: entries.map((e) => e.message), position: last ? formatRecordPosition(last.position) : after };
  }

  feedLag(after: FeedPosition | null): Promise<{ count: number; oldestTs: string | null }> {
    return this.feed.lag(parseRecordPosition(after));
  }

  async getCheckpoint(consumer: string): Promise<FeedPosition | null> {
    const row = await getOrNull<{ position: string }>(this.feedTable.client, CHECKPOINTS, escapeKey(consumer), 'read a checkpoint');
    return row ? row.position : null;
  }

  async setCheckpoint(consumer: string, position: FeedPosition): Promise<void> {
    parseRecordPosition(position);
    try {
      await this.feedTable.client.upsertEntity({ partitionKey: CHECKPOINTS, rowKey: escapeKey(consumer), position }, 'Replace');
    } catch (err) {
      throw storeError('write a checkpoint', err);
    }
  }

  /**
   * Finds expired messages in the expiry partitions and, with `olderThan`, old ones in the
   * `all` partitions; keeps those a reader at a `keepAfter` position has not passed (their
   * batch's last feed record is not behind it); then deletes every row of the others. The rows
   * a purge finds messages by go last, so a purge that stops half-way is finished by the next.
   */
  async purgeExpired(now: Date, olderThan?: Date, keepAfter: (FeedPosition | null)[] = []): Promise<number> {
    const passedBy = earliestRecordPosition(keepAfter);
    if (keepAfter.length > 0 && passedBy === null) return 0; // a reader at the very start keeps everything
    const victims = new Map<string, IndexRow>();
    const scan = async (partitionKey: string, high: string) => {
      const filter = odata`PartitionKey eq ${partitionKey} and RowKey ge ${'A'} and RowKey lt ${high}`;
      for await (const row of this.messages.client.listEntities<IndexRow>({ queryOptions: { filter } })) {
        // A large backlog is purged a slice per call; the server calls again every purgeInterval.
        if (victims.size >= PURGE_SLICE) return;
        victims.set(senderAndId({ from: row.f, id: row.i }), row);
      }
    };
    try {
      for (let shard = 0; shard < SHARDS; shard++) {
        await scan(streams.expiry(shard), 'A' + timeKey(now.getTime()));
        if (olderThan) await scan(streams.all(shard), 'A' + timeKey(olderThan.getTime()));
      }
    } catch (err) {
      throw storeError('find expired messages', err);
    }
    let doomed = [...victims.values()];
    if (passedBy) {
      const passed = await this.feed.passed(new Set(doomed.map((row) => row.w)), passedBy);
      doomed = doomed.filter((row) => passed.has(row.w));
    }
    const rows = doomed.flatMap((row) => indexRows(fieldsOfRow(row), row.w));
    const findable = (row: IndexRow) => row.partitionKey.startsWith('a|') || row.partitionKey.startsWith('x|');
    const keys = (list: IndexRow[]) => list.map(({ partitionKey, rowKey }) => ({ partitionKey, rowKey }));
    await deleteAll(this.messages.client, keys(rows.filter((row) => !findable(row))), 'purge index rows');
    const purged = await deleteAll(
      this.messages.client,
      doomed.map((row) => messageKey(row.f, row.i)),
      'purge messages',
    );
    await deleteAll(this.messages.client, keys(rows.filter(findable)), 'purge index rows');
    if (olderThan) await deleteAll(this.feedTable.client, await this.feed.keysBefore(olderThan, passedBy ?? undefined), 'purge the feed');
    return purged;
  }
}
