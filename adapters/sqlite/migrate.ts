import type { Database } from 'better-sqlite3';
import type { Message } from '../../core/message.js';
import type { ChunkWriter } from './chunk-writer.js';
import { FRAME_HEADER, encodeFrame, recordBound } from './record.js';

/** Rows moved per transaction. */
const BATCH = 10_000;

/**
 * Moves the messages of a database written before chunks (table `messages`, a row per message
 * with its sequence number) into chunks, keeping their sequence numbers, so that feed
 * checkpoints stay valid and new messages are numbered after them. Each batch moves in one
 * transaction that also deletes its rows: a crash midway leaves every message in exactly one
 * of the two places, and the next start carries on. Returns how many messages moved.
 */
export function migrateMessagesTable(db: Database, writer: ChunkWriter): number {
  if (!db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'messages'").get()) return 0;
  const select = db.prepare<[number, number], { seq: number; committed: number; envelope: string }>('SELECT seq, committed, envelope FROM messages WHERE seq > ? ORDER BY seq LIMIT ?');
  const remove = db.prepare<[number]>('DELETE FROM messages WHERE seq <= ?');
  const move = db.transaction((input: Parameters<ChunkWriter['compact']>[0], first: number, last: number) => {
    writer.compact(input, first, last);
    remove.run(last);
  });
  let moved = 0;
  for (let after = 0, rows; (rows = select.all(after, BATCH)).length > 0; after = rows[rows.length - 1]!.seq) {
    const messages = rows.map((row) => JSON.parse(row.envelope) as Message);
    let bound = 0;
    for (const m of messages) bound += FRAME_HEADER + recordBound(m);
    const buf = Buffer.allocUnsafe(bound);
    const spans: number[] = [];
    // One frame per message: sequence numbers after purges have gaps, a frame's have none.
    for (let i = 0, at = 0; i < rows.length; i++) {
      const { length } = encodeFrame([messages[i]!], rows[i]!.seq, rows[i]!.committed, buf.subarray(at));
      spans.push(at + FRAME_HEADER, at + length);
      at += length;
    }
    move({ buf, spans }, rows[0]!.seq, rows[rows.length - 1]!.seq);
    moved += rows.length;
  }
  db.exec('DROP TABLE messages; DROP TABLE IF EXISTS message_tags;');
  return moved;
}
