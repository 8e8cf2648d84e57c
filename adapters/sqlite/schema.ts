import type { Database } from 'better-sqlite3';

/**
 * Durability settings (docs/architecture.md, "Delivery"): WAL, and `synchronous=FULL` so every commit is fsynced
 * before it returns (the WAL is synced at each commit), which group commit keeps cheap.
 */
export function configureDurable(db: Database): void {
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
}

/**
 * The message store's tables (see docs/adapters/sqlite.md). Messages reach them by compaction
 * from the journal, grouped in chunks: the messages of one sender, type and recipient from one
 * compaction, at most CHUNK_SPAN_MS apart in `ts`, sorted by (ts, id). Indexes cover chunks,
 * not messages, except `ids` (idempotency and `get`). Every index on time holds both ends of a
 * chunk's range, so a scan skips chunks that cannot match without reading them.
 */
export const MESSAGE_SCHEMA = `
CREATE TABLE IF NOT EXISTS chunks (
  chunk INTEGER PRIMARY KEY,
  sender TEXT NOT NULL,
  type TEXT NOT NULL,
  recipient TEXT,
  ts_min INTEGER NOT NULL,
  ts_max INTEGER NOT NULL,
  seq_min INTEGER NOT NULL,
  expires_min INTEGER,
  count INTEGER NOT NULL,
  compaction INTEGER NOT NULL,
  data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_ts ON chunks (ts_min, ts_max);
CREATE INDEX IF NOT EXISTS chunks_sender ON chunks (sender, ts_min, ts_max);
CREATE INDEX IF NOT EXISTS chunks_type ON chunks (type, ts_min, ts_max);
CREATE INDEX IF NOT EXISTS chunks_recipient ON chunks (recipient, ts_min, ts_max) WHERE recipient IS NOT NULL;
CREATE INDEX IF NOT EXISTS chunks_expires ON chunks (expires_min) WHERE expires_min IS NOT NULL;
CREATE TABLE IF NOT EXISTS chunk_tags (
  tag TEXT NOT NULL,
  ts_min INTEGER NOT NULL,
  ts_max INTEGER NOT NULL,
  chunk INTEGER NOT NULL,
  PRIMARY KEY (tag, ts_min, ts_max, chunk)
) WITHOUT ROWID;
-- One entry per message: the idempotency key is (sender, id) and a chunk has one sender.
CREATE TABLE IF NOT EXISTS ids (
  id TEXT NOT NULL,
  chunk INTEGER NOT NULL,
  PRIMARY KEY (id, chunk)
) WITHOUT ROWID;
-- One row per compaction: the feed reads a compaction's chunks together, in sequence order.
CREATE TABLE IF NOT EXISTS compactions (
  seq_last INTEGER PRIMARY KEY,
  seq_first INTEGER NOT NULL,
  chunk_first INTEGER NOT NULL,
  chunk_last INTEGER NOT NULL,
  count INTEGER NOT NULL
);
-- 'compacted': every message up to this sequence number is in chunks (the journal's watermark).
CREATE TABLE IF NOT EXISTS meta (
  key TEXT PRIMARY KEY,
  value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoints (
  consumer TEXT PRIMARY KEY,
  position INTEGER NOT NULL
);
`;

/** A chunk's messages are less than this far apart in `ts`, which bounds how far a time scan looks back. */
export const CHUNK_SPAN_MS = 10_000;

export const REGISTRY_SCHEMA = `
CREATE TABLE IF NOT EXISTS principals (
  id TEXT PRIMARY KEY,
  type TEXT NOT NULL,
  name TEXT,
  tags TEXT NOT NULL,
  created_at TEXT NOT NULL,
  last_seen_at TEXT,
  enabled INTEGER NOT NULL,
  secret_hash TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS principals_type ON principals (type, id);
CREATE TABLE IF NOT EXISTS permissions (
  id TEXT PRIMARY KEY,
  issued_to TEXT,
  principal_for TEXT,
  action TEXT,
  authorized INTEGER NOT NULL,
  priority INTEGER NOT NULL,
  expires TEXT,
  created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS permissions_issued_to ON permissions (issued_to);
CREATE INDEX IF NOT EXISTS permissions_principal_for ON permissions (principal_for);
CREATE TABLE IF NOT EXISTS records (
  kind TEXT NOT NULL,
  key TEXT NOT NULL,
  principal TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (kind, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS records_principal ON records (principal, kind, key);
`;
