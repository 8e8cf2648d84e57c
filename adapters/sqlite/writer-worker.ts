import Database from 'better-sqlite3';
import { parentPort, workerData } from 'node:worker_threads';
import { MESSAGE_SCHEMA, configureDurable, type MessageRow } from './schema.js';
import type { WriterData, WriterReply, WriterRequest } from './writer-protocol.js';

/*
 * The store's single writer, on its own thread: each commit's fsync blocks this thread only,
 * never the event loop that serves MQTT and REST.
 */
const { file } = workerData as WriterData;
const db = new Database(file);
configureDurable(db);
db.exec(MESSAGE_SCHEMA);

const insertMessage = db.prepare('INSERT OR IGNORE INTO messages (id, ts, sender, recipient, type, expires, committed, envelope) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
const insertTag = db.prepare('INSERT OR IGNORE INTO message_tags (tag, seq) VALUES (?, ?)');
const upsertCheckpoint = db.prepare('INSERT INTO checkpoints (consumer, position) VALUES (?, ?) ON CONFLICT (consumer) DO UPDATE SET position = excluded.position');
const purgeTags = db.prepare('DELETE FROM message_tags WHERE seq IN (SELECT seq FROM messages WHERE (expires < ? OR ts < ?) AND seq <= ?)');
const purgeMessages = db.prepare('DELETE FROM messages WHERE (expires < ? OR ts < ?) AND seq <= ?');

const append = db.transaction((rows: MessageRow[]) => {
  const committed = Date.now();
  for (const row of rows) {
    const info = insertMessage.run(row[0], row[1], row[2], row[3], row[4], row[5], committed, row[6]);
    // A repeated (id, sender) inserts nothing (idempotent append), and then gets no tags either.
    const tags = row[7];
    if (tags && info.changes === 1) for (const tag of tags) insertTag.run(tag, info.lastInsertRowid);
  }
});

const purge = db.transaction((now: number, olderThan: number, upTo: number) => {
  purgeTags.run(now, olderThan, upTo);
  return purgeMessages.run(now, olderThan, upTo).changes;
});

function handle(request: WriterRequest): WriterReply {
  try {
    switch (request.op) {
      case 'append':
        append(request.rows);
        return { id: request.id, ok: true };
      case 'checkpoint':
        upsertCheckpoint.run(request.consumer, request.position);
        return { id: request.id, ok: true };
      case 'purge':
        return { id: request.id, ok: true, result: purge(request.now, request.olderThan ?? Number.MIN_SAFE_INTEGER, request.upTo) };
    }
  } catch (err) {
    return { id: request.id, ok: false, error: (err as Error).message, code: (err as { code?: string }).code };
  }
}

parentPort!.on('message', (request: WriterRequest | 'close') => {
  if (request === 'close') {
    db.close();
    parentPort!.close();
    return;
  }
  parentPort!.postMessage(handle(request));
});
