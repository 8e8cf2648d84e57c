import type { Database } from 'better-sqlite3';
import { buildChunks, type CompactionInput } from './chunks.js';
import { readRecords, recordId, type MessageRecord } from './record.js';

/** Rows per multi-row INSERT into `ids`: one statement run instead of a hundred saves most of the binding overhead. */
const IDS_PER_INSERT = 128;

interface StoredChunk {
  chunk: number;
  compaction: number;
  ts_min: number;
  ts_max: number;
  data: Buffer;
}

/**
 * The store's only writer of its database, on the compactor thread: compactions, purges and
 * feed checkpoints, each in one transaction.
 */
export class ChunkWriter {
  private readonly sql;
  private readonly idsMany;
  private readonly idsParams = new Array<string | number>(IDS_PER_INSERT * 2);
  readonly compact: (input: CompactionInput, seqFirst: number, seqLast: number) => void;
  private readonly purgeChunks: (chunks: number[], now: number, olderThan: number, upTo: number) => number;

  constructor(db: Database) {
    this.sql = {
      chunk: db.prepare('INSERT INTO chunks (sender, type, recipient, ts_min, ts_max, seq_min, expires_min, count, compaction, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)'),
      id: db.prepare('INSERT OR IGNORE INTO ids (id, chunk) VALUES (?, ?)'),
      tag: db.prepare('INSERT INTO chunk_tags (tag, ts_min, ts_max, chunk) VALUES (?, ?, ?, ?)'),
      compaction: db.prepare('INSERT INTO compactions (seq_last, seq_first, chunk_first, chunk_last, count) VALUES (?, ?, ?, ?, ?)'),
      watermark: db.prepare("INSERT INTO meta (key, value) VALUES ('compacted', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"),
      compacted: db.prepare<[], { value: number }>("SELECT value FROM meta WHERE key = 'compacted'"),
      checkpoint: db.prepare('INSERT INTO checkpoints (consumer, position) VALUES (?, ?) ON CONFLICT (consumer) DO UPDATE SET position = excluded.position'),
      expiring: db.prepare<[number, number], { chunk: number }>('SELECT chunk FROM chunks WHERE expires_min < ? AND seq_min <= ?'),
      old: db.prepare<[number, number], { chunk: number }>('SELECT chunk FROM chunks WHERE ts_min < ? AND seq_min <= ?'),
      stored: db.prepare<[number], StoredChunk>('SELECT chunk, compaction, ts_min, ts_max, data FROM chunks WHERE chunk = ?'),
      rewrite: db.prepare('UPDATE chunks SET ts_min = ?, ts_max = ?, seq_min = ?, expires_min = ?, count = ?, data = ? WHERE chunk = ?'),
      deleteChunk: db.prepare('DELETE FROM chunks WHERE chunk = ?'),
      deleteId: db.prepare('DELETE FROM ids WHERE id = ? AND chunk = ?'),
      deleteTag: db.prepare('DELETE FROM chunk_tags WHERE tag = ? AND ts_min = ? AND ts_max = ? AND chunk = ?'),
      shrinkCompaction: db.prepare('UPDATE compactions SET count = count - ? WHERE seq_last = ?'),
      dropEmptyCompaction: db.prepare('DELETE FROM compactions WHERE seq_last = ? AND count <= 0'),
    };
    // OR IGNORE although no conflict can happen (a chunk's ids are new): a statement that may
    // abort half-way makes SQLite keep a statement journal, which cost more than the inserts.
    this.idsMany = db.prepare(`INSERT OR IGNORE INTO ids (id, chunk) VALUES ${Array(IDS_PER_INSERT).fill('(?, ?)').join(', ')}`);
    this.compact = db.transaction((input: CompactionInput, seqFirst: number, seqLast: number) => this.writeCompaction(input, seqFirst, seqLast));
    this.purgeChunks = db.transaction((chunks: number[], now: number, olderThan: number, upTo: number) => {
      let purged = 0;
      for (const chunk of chunks) purged += this.purgeChunk(chunk, now, olderThan, upTo);
      return purged;
    });
  }

  /** Every message up to this sequence number is in chunks. */
  compacted(): number {
    return this.sql.compacted.get()?.value ?? 0;
  }

  setCheckpoint(consumer: string, position: number): void {
    this.sql.checkpoint.run(consumer, position);
  }

  /** Chunks that may hold messages to purge (the caller purges them a slice at a time). */
  purgeCandidates(now: number, olderThan: number, upTo: number): number[] {
    const chunks = new Set<number>();
    for (const row of this.sql.expiring.all(now, upTo)) chunks.add(row.chunk);
    for (const row of this.sql.old.all(olderThan, upTo)) chunks.add(row.chunk);
    return [...chunks].sort((a, b) => a - b);
  }

  /** Purges in the given chunks what `purgeExpired` asks for; returns how many messages went. */
  purge(chunks: number[], now: number, olderThan: number, upTo: number): number {
    return this.purgeChunks(chunks, now, olderThan, upTo);
  }

  private writeCompaction(input: CompactionInput, seqFirst: number, seqLast: number): void {
    let first = 0;
    let last = 0;
    const { offsets, chunkOf } = buildChunks(input, (c) => {
      last = Number(this.sql.chunk.run(c.sender, c.type, c.recipient, c.tsMin, c.tsMax, c.seqMin, c.expiresMin, c.count, seqLast, c.data).lastInsertRowid);
      if (first === 0) first = last;
      for (const tag of c.tags) this.sql.tag.run(tag, c.tsMin, c.tsMax, last);
      return last;
    });
    // In sequence order, which is id order for the server's time-ordered ids: appends at the
    // index's right edge, where SQLite fills pages instead of splitting them.
    const params = this.idsParams;
    const per = params.length / 2;
    let i = 0;
    for (; i + per <= offsets.length; i += per) {
      for (let k = 0; k < per; k++) {
        params[2 * k] = recordId(input.buf, offsets[i + k]!);
        params[2 * k + 1] = chunkOf[i + k]!;
      }
      this.idsMany.run(params);
    }
    for (; i < offsets.length; i++) this.sql.id.run(recordId(input.buf, offsets[i]!), chunkOf[i]);
    if (first > 0) this.sql.compaction.run(seqLast, seqFirst, first, last, offsets.length);
    this.sql.watermark.run(seqLast);
  }

  private purgeChunk(chunk: number, now: number, olderThan: number, upTo: number): number {
    const stored = this.sql.stored.get(chunk);
    if (!stored) return 0;
    const records = readRecords(stored.data);
    const gone = (r: MessageRecord) => r.seq <= upTo && (r.expires < now || r.ts < olderThan);
    const kept = records.filter((r) => !gone(r));
    if (kept.length === records.length) return 0;
    const removed = records.filter(gone);
    for (const r of removed) this.sql.deleteId.run(r.id, chunk);
    for (const tag of tagsOf(records)) this.sql.deleteTag.run(tag, stored.ts_min, stored.ts_max, chunk);
    if (kept.length === 0) {
      this.sql.deleteChunk.run(chunk);
    } else {
      // The same chunk, smaller: its summary and tag entries must describe what is left exactly.
      const tsMin = kept[0]!.ts;
      const tsMax = kept[kept.length - 1]!.ts;
      let seqMin = Infinity;
      let expiresMin = Infinity;
      for (const r of kept) {
        seqMin = Math.min(seqMin, r.seq);
        if (r.expires < expiresMin) expiresMin = r.expires;
      }
      const data = Buffer.concat(kept.map((r) => stored.data.subarray(r.start, r.end)));
      this.sql.rewrite.run(tsMin, tsMax, seqMin, expiresMin === Infinity ? null : expiresMin, kept.length, data, chunk);
      for (const tag of tagsOf(kept)) this.sql.tag.run(tag, tsMin, tsMax, chunk);
    }
    this.sql.shrinkCompaction.run(removed.length, stored.compaction);
    this.sql.dropEmptyCompaction.run(stored.compaction);
    return removed.length;
  }
}

function tagsOf(records: MessageRecord[]): Set<string> {
  const tags = new Set<string>();
  for (const r of records) if (r.tags) for (const tag of r.tags) tags.add(tag);
  return tags;
}
