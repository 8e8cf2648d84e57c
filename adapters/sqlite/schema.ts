import type { Database } from 'better-sqlite3';

/**
 * Durability settings of DESIGN.md §4: WAL, and `synchronous=FULL` so every commit is fsynced
 * before it returns (the WAL is synced at each commit), which group commit keeps cheap.
 */
export function configureDurable(db: Database): void {
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
}

// `seq` is AUTOINCREMENT so a purged tail never gives its numbers to new messages:
// sinks' checkpoints are seq values and must only ever move forward.
export const MESSAGE_SCHEMA = `
CREATE TABLE IF NOT EXISTS messages (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL,
  ts INTEGER NOT NULL,
  sender TEXT NOT NULL,
  recipient TEXT,
  type TEXT NOT NULL,
  expires INTEGER,
  committed INTEGER NOT NULL,
  envelope TEXT NOT NULL
);
-- Idempotency key (DESIGN.md §5.1): the id, scoped by sender; also serves lookups by id.
CREATE UNIQUE INDEX IF NOT EXISTS messages_id ON messages (id, sender);
CREATE INDEX IF NOT EXISTS messages_ts ON messages (ts, id, sender);
CREATE INDEX IF NOT EXISTS messages_sender_ts ON messages (sender, ts, id);
CREATE INDEX IF NOT EXISTS messages_recipient_ts ON messages (recipient, ts, id, sender) WHERE recipient IS NOT NULL;
CREATE INDEX IF NOT EXISTS messages_type_ts ON messages (type, ts, id, sender);
CREATE INDEX IF NOT EXISTS messages_expires ON messages (expires) WHERE expires IS NOT NULL;
CREATE TABLE IF NOT EXISTS message_tags (
  tag TEXT NOT NULL,
  seq INTEGER NOT NULL,
  PRIMARY KEY (tag, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints (
  consumer TEXT PRIMARY KEY,
  position INTEGER NOT NULL
);
`;

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
`;

/** One message as the writer inserts it: [id, ts ms, from, to, type, expires ms, envelope JSON, tags]. */
export type MessageRow = [string, number, string, string | null, string, number | null, string, string[] | null];
