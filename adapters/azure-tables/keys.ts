import { NitrogenError } from '../../core/errors.js';
import type { Message } from '../../core/message.js';

/*
 * Key layout of the Azure Tables store (docs/adapters/azure-tables.md has the full picture).
 * Azure Tables sorts by (PartitionKey, RowKey) as strings and scans only upwards, so every
 * order a query needs is spelled into a RowKey: ascending rows `A<ms><id>`, descending rows
 * `D<inverted ms><inverted id>`. Times are fixed-width so string order is time order.
 */

const TS_WIDTH = 15;
const TS_MAX = 10 ** TS_WIDTH - 1;

/** Streams spread over this many partitions (type, tag, all, expiry); part of the stored layout. */
export const SHARDS = 4;
/** Message rows spread over this many partitions by a hash of the id; part of the stored layout. */
const MESSAGE_BUCKETS = 16;

export function timeKey(ms: number): string {
  return String(ms).padStart(TS_WIDTH, '0');
}

export function invertedTimeKey(ms: number): string {
  return String(TS_MAX - ms).padStart(TS_WIDTH, '0');
}

/**
 * Reverses the order of message ids: each character becomes two hex digits of 255 minus its
 * code, and the terminator `z` (above every hex digit) sorts a shorter id after its longer
 * extensions, as descending order wants ("ab" before "a").
 */
function invertedId(id: string): string {
  let out = '';
  for (let i = 0; i < id.length; i++) out += (255 - id.charCodeAt(i)).toString(16).padStart(2, '0');
  return out + 'z';
}

/** Characters kept as they are in keys; everything else is %-escaped (Azure forbids / \ # ? and controls). */
const UNSAFE = /[^A-Za-z0-9._:~-]/gu;

export function escapeKey(value: string): string {
  return value.replace(UNSAFE, (c) => [...Buffer.from(c, 'utf8')].map((b) => '%' + b.toString(16).padStart(2, '0')).join(''));
}

export function unescapeKey(key: string): string {
  return decodeURIComponent(key);
}

/** FNV-1a, 32 bits: a cheap, stable spread of ids over partitions. */
function hash32(value: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < value.length; i++) {
    h ^= value.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** The ids the message layer makes and accepts; the store relies on them for its keys. */
const MESSAGE_ID = /^[A-Za-z0-9._:~-]{1,128}$/;

export function isStorableId(id: string): boolean {
  return MESSAGE_ID.test(id);
}

export function checkMessageId(id: string): void {
  if (!isStorableId(id)) throw new NitrogenError('NITROGEN_ERR_VALIDATION', `message id '${id.slice(0, 40)}' must match [A-Za-z0-9._:~-]{1,128}`);
}

/**
 * The idempotency key is (sender, id). Every key of a message ends in ` <sender>`: the space
 * sorts below every id character, so (ts, id) order comes first and the sender breaks ties.
 */
const bySender = (from: string) => ' ' + escapeKey(from);

export function messagePartition(id: string): string {
  return `m|${(hash32(id) % MESSAGE_BUCKETS).toString(16).padStart(2, '0')}`;
}

/** The message row of (sender, id); every sender's copy of an id shares the id's partition. */
export function messageKey(from: string, id: string): { partitionKey: string; rowKey: string } {
  return { partitionKey: messagePartition(id), rowKey: id + bySender(from) };
}

function shardOf(id: string): number {
  return (hash32(id) >>> 8) % SHARDS;
}

/** Partitions of the index streams a query can scan. */
export const streams = {
  from: (from: string) => `f|${escapeKey(from)}`,
  to: (to: string) => `t|${escapeKey(to)}`,
  type: (type: string, shard: number) => `y|${escapeKey(type)}|${shard}`,
  // Tags may hold any character and be long: their partitions use a hash, and the
  // query checks the tags themselves, so a collision costs a little scanning, nothing else.
  tag: (tag: string, shard: number) => `g|${hash32(tag).toString(16).padStart(8, '0')}|${shard}`,
  all: (shard: number) => `a|${shard}`,
  expiry: (shard: number) => `x|${shard}`,
};

/** The row key of a message in a stream, in ascending or descending (ts, id) order. */
export function streamKey(order: 'asc' | 'desc', ts: string, id: string, from: string): string {
  const ms = Date.parse(ts);
  // Descending rows invert the sender too, so ties on (ts, id) also come out newest-order-reversed.
  return order === 'asc' ? 'A' + timeKey(ms) + id + bySender(from) : 'D' + invertedTimeKey(ms) + invertedId(id) + ' ' + invertedId(from);
}

/** What an index row holds: enough to filter a query and to find every row of the message. */
export interface IndexFields {
  id: string;
  from: string;
  to?: string;
  type: string;
  ts: string;
  tags?: string[];
  expires?: string;
}

export type IndexRow = {
  partitionKey: string;
  rowKey: string;
  i: string;
  f: string;
  y: string;
  s: string;
  t?: string;
  g?: string;
  x?: string;
  /** The append batch that fed the message (retention asks the feed whether sinks passed it). */
  w: string;
  /** The envelope's JSON, when small enough to copy. */
  m?: string;
};

export function fieldsOfRow(row: Omit<IndexRow, 'partitionKey' | 'rowKey'>): IndexFields {
  const fields: IndexFields = { id: row.i, from: row.f, type: row.y, ts: row.s };
  if (row.t !== undefined) fields.to = row.t;
  if (row.g !== undefined) fields.tags = JSON.parse(row.g) as string[];
  if (row.x !== undefined) fields.expires = row.x;
  return fields;
}

/** The stream partitions one message is indexed in. */
function streamsOf(m: IndexFields): string[] {
  const shard = shardOf(m.id);
  const out = [streams.from(m.from), streams.type(m.type, shard)];
  if (m.to !== undefined) out.push(streams.to(m.to));
  for (const tag of new Set(m.tags ?? [])) out.push(streams.tag(tag, shard));
  out.push(streams.all(shard));
  return out;
}

/** Envelopes up to this size are copied into index rows, so most query pages need no further reads. */
const INLINE_CHARS = 4096;

/**
 * Every index row of a message: an ascending and a descending row per stream, and its expiry
 * row. `batch` names the append batch that feeds it; a small envelope is copied in (`m`).
 */
export function indexRows(m: Message | IndexFields, batch: string, envelope?: string): IndexRow[] {
  checkMessageId(m.id);
  const body: Omit<IndexRow, 'partitionKey' | 'rowKey'> = { i: m.id, f: m.from, y: m.type, s: m.ts, w: batch };
  if (envelope !== undefined && envelope.length <= INLINE_CHARS) body.m = envelope;
  if (m.to !== undefined) body.t = m.to;
  if (m.tags?.length) body.g = JSON.stringify(m.tags);
  if (m.expires !== undefined) body.x = m.expires;
  const asc = streamKey('asc', m.ts, m.id, m.from);
  const desc = streamKey('desc', m.ts, m.id, m.from);
  const rows: IndexRow[] = [];
  for (const partitionKey of streamsOf(m)) {
    rows.push({ partitionKey, rowKey: asc, ...body }, { partitionKey, rowKey: desc, ...body });
  }
  if (m.expires !== undefined) rows.push({ partitionKey: streams.expiry(shardOf(m.id)), rowKey: streamKey('asc', m.expires, m.id, m.from), ...body });
  return rows;
}
