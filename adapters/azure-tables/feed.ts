import { odata, type TableClient, type TransactionAction } from '@azure/data-tables';
import { BatchingWriter } from '../../core/batching-writer.js';
import { encodeMessage, type Message } from '../../core/message.js';
import { mapLimit, statusOf, storeError } from './connection.js';
import { getOrNull, readText, textProperties } from './entities.js';
import { timeKey } from './keys.js';
import type { RecordPosition } from '../../core/feed-position.js';

const PARTITION = 'feed';
const HEAD = 'h';
/**
 * Records stay under the 1 MiB entity limit: a record is cut at RECORD_CHARS, and a single
 * envelope larger than that (at most 480 KiB, see index.ts) gets a record of its own.
 */
const RECORD_CHARS = 200_000;
/** Transactions stay under the 4 MiB payload limit (at most 3 UTF-8 bytes per character). */
const TRANSACTION_CHARS = 800_000;
const TRANSACTION_ROWS = 99; // and the head row
const MAX_CONFLICTS = 50;

const recordKey = (seq: number) => 's' + timeKey(seq);
const markerKey = (batch: string) => 'b' + batch;

interface Entry {
  /** The envelopes' JSON text. */
  items: string[];
  batch: string;
}

/** A record names its batch only when it is the batch's last, as the marker row does. */
type Row = { kind: 'record'; text: string; count: number; batch?: string } | { kind: 'marker'; batch: string };

/** The rows of entries in feed order: records of at most RECORD_CHARS, each batch's marker after its last record. */
function rowsOf(entries: Entry[]): Row[] {
  const rows: Row[] = [];
  for (const entry of entries) {
    let items: string[] = [];
    let chars = 0;
    for (const item of entry.items) {
      if (items.length > 0 && chars + item.length > RECORD_CHARS) {
        rows.push({ kind: 'record', text: `[${items.join(',')}]`, count: items.length });
        items = [];
        chars = 0;
      }
      items.push(item);
      chars += item.length + 1;
    }
    rows.push({ kind: 'record', text: `[${items.join(',')}]`, count: items.length, batch: entry.batch }, { kind: 'marker', batch: entry.batch });
  }
  return rows;
}

/** Packs rows, in order, into transactions within Azure's limits. */
function pack(rows: Row[]): Row[][] {
  const groups: Row[][] = [[]];
  let chars = 0;
  for (const row of rows) {
    const size = row.kind === 'record' ? row.text.length : 0;
    const current = groups[groups.length - 1]!;
    if (current.length >= TRANSACTION_ROWS || (current.length > 0 && chars + size > TRANSACTION_CHARS)) {
      groups.push([]);
      chars = 0;
    }
    groups[groups.length - 1]!.push(row);
    chars += size;
  }
  return groups;
}

/**
 * The commit-ordered feed, shared by every instance on the table.
 *
 * Records are numbered 1, 2, 3, … with no holes while they are written: an instance inserts
 * record n+1 only after it saw record n (its own write, the head row, or a conflict), in one
 * transaction with the head row. So whenever a reader sees record n, every record below n was
 * already written (or purged) and reading up to n can never skip a commit still in flight.
 * Each instance writes its records one transaction at a time and puts every append that waits
 * into that transaction (group commit again); another instance taking the number first only
 * costs a retry. Records hold the envelopes themselves, so what sinks read never depends on
 * message rows that retention may have deleted. A marker row per append batch says that the
 * batch is in the feed, and where its last record is.
 */
export class AzureFeed {
  private readonly writer = new BatchingWriter<Entry>(async (entries) => {
    try {
      for (const group of pack(rowsOf(entries))) await this.write(group);
    } catch (err) {
      throw storeError('write the feed', err);
    }
  });
  /** The highest record number known to exist; undefined until read. */
  private head?: number;

  constructor(private readonly client: TableClient) {}

  /** Resolves once records holding `messages` are durable in the feed. */
  publish(messages: Message[], batch: string): Promise<void> {
    return this.writer.push({ items: messages.map(encodeMessage), batch });
  }

  private async write(rows: Row[]): Promise<void> {
    const at = new Date().toISOString();
    for (let conflicts = 0; ; conflicts++) {
      this.head ??= await this.readHead();
      let seq = this.head;
      let count = 0;
      const actions: TransactionAction[] = rows.map((row) => {
        if (row.kind === 'record') {
          count = row.count;
          const record = { partitionKey: PARTITION, rowKey: recordKey(++seq), at, n: row.count, ...textProperties('i', row.text) };
          return ['create', row.batch === undefined ? record : { ...record, b: row.batch }];
        }
        // An upsert: a transaction the client saw fail may have been stored, and is then written again.
        return ['upsert', { partitionKey: PARTITION, rowKey: markerKey(row.batch), seq: String(seq), n: count }, 'Replace'];
      });
      actions.push(['upsert', { partitionKey: PARTITION, rowKey: HEAD, seq: String(seq) }, 'Replace']);
      try {
        await this.client.submitTransaction(actions);
        this.head = seq;
        return;
      } catch (err) {
        // Another instance took these numbers: learn the head again and take the next ones.
        if (statusOf(err) !== 409 || conflicts >= MAX_CONFLICTS) throw err;
        this.head = undefined;
      }
    }
  }

  private async readHead(): Promise<number> {
    const head = await getOrNull<{ seq: string }>(this.client, PARTITION, HEAD, 'read the feed head');
    return head ? Number(head.seq) : 0;
  }

  /** Where the last record of an append batch is, or null when the batch never reached the feed. */
  async locate(batch: string): Promise<{ seq: number; last: number } | null> {
    const marker = await getOrNull<{ seq: string; n: number }>(this.client, PARTITION, markerKey(batch), 'read the feed');
    return marker ? { seq: Number(marker.seq), last: marker.n - 1 } : null;
  }

  /** The batches among `batches` whose messages every reader at `position` has passed. */
  async passed(batches: Iterable<string>, position: RecordPosition): Promise<Set<string>> {
    const list = [...batches];
    const found = await mapLimit(list, 16, (batch) => this.locate(batch));
    return new Set(
      list.filter((_, i) => {
        const at = found[i];
        return at !== null && at !== undefined && (at.seq < position.seq || (at.seq === position.seq && at.last <= position.index));
      }),
    );
  }

  /** The messages after `position` in feed order, each with its position; at least `limit` when there are. */
  async after(position: RecordPosition, limit: number): Promise<Array<{ message: Message; position: RecordPosition }>> {
    const out: Array<{ message: Message; position: RecordPosition }> = [];
    const filter = odata`PartitionKey eq ${PARTITION} and RowKey ge ${recordKey(position.seq)} and RowKey lt ${'t'}`;
    const pages = this.client.listEntities<Record<string, unknown>>({ queryOptions: { filter } }).byPage({ maxPageSize: 100 });
    try {
      for await (const page of pages) {
        for (const record of page) {
          const seq = Number((record.rowKey as string).slice(1));
          const messages = JSON.parse(readText(record, 'i')) as Message[];
          for (let index = seq === position.seq ? position.index + 1 : 0; index < messages.length; index++) {
            out.push({ message: messages[index]!, position: { seq, index } });
          }
          if (out.length >= limit) return out;
        }
      }
    } catch (err) {
      throw storeError('read the feed', err);
    }
    return out;
  }

  /** Messages after `position` and the commit time of the oldest: a scan of the records' counts. */
  async lag(position: RecordPosition): Promise<{ count: number; oldestTs: string | null }> {
    let count = 0;
    let oldestTs: string | null = null;
    const filter = odata`PartitionKey eq ${PARTITION} and RowKey ge ${recordKey(position.seq)} and RowKey lt ${'t'}`;
    try {
      for await (const record of this.client.listEntities<{ n: number; at: string }>({ queryOptions: { filter, select: ['RowKey', 'n', 'at'] } })) {
        const unread = Number(record.rowKey!.slice(1)) === position.seq ? record.n - position.index - 1 : record.n;
        if (unread <= 0) continue;
        count += unread;
        oldestTs ??= record.at;
      }
    } catch (err) {
      throw storeError('read the feed', err);
    }
    return { count, oldestTs };
  }

  /**
   * Keys of the records written before `before` and, when `passedBy` is given, wholly behind
   * it (a record goes only once every reader is past it), with the markers of the batches they end.
   */
  async keysBefore(before: Date, passedBy: RecordPosition | undefined): Promise<Array<{ partitionKey: string; rowKey: string }>> {
    const keys: Array<{ partitionKey: string; rowKey: string }> = [];
    const high = passedBy === undefined ? 't' : recordKey(passedBy.seq);
    const filter = odata`PartitionKey eq ${PARTITION} and RowKey ge ${'s'} and RowKey lt ${high} and at lt ${before.toISOString()}`;
    try {
      for await (const record of this.client.listEntities<{ b?: string }>({ queryOptions: { filter, select: ['RowKey', 'b'] } })) {
        keys.push({ partitionKey: PARTITION, rowKey: record.rowKey! });
        if (record.b !== undefined) keys.push({ partitionKey: PARTITION, rowKey: markerKey(record.b) });
      }
    } catch (err) {
      throw storeError('read the feed', err);
    }
    return keys;
  }
}
