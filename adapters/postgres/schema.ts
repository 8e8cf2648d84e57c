import type pg from 'pg';
import { NitrogenError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { checkOut, connect, ident, storeError, type PostgresConnectionOptions } from './connection.js';

/**
 * The tables, created at start when missing (docs/adapters/postgres.md has the reasons for
 * each index). Identifiers and sort keys are `COLLATE "C"`: byte order, which for their ASCII
 * alphabets is the order JavaScript compares strings in, whatever the database's locale.
 */
const STORE_TABLES = (s: string, compression: string) => [
  `CREATE TABLE IF NOT EXISTS ${s}.messages (
    id text COLLATE "C" NOT NULL,
    sender text COLLATE "C" NOT NULL,
    ts timestamptz NOT NULL,
    recipient text COLLATE "C",
    type text COLLATE "C" NOT NULL,
    tags text[] COLLATE "C",
    expires timestamptz,
    batch xid8 NOT NULL DEFAULT pg_current_xact_id(),
    envelope text ${compression} NOT NULL,
    PRIMARY KEY (id, sender)
  )`,
  `CREATE INDEX IF NOT EXISTS messages_ts ON ${s}.messages (ts, id, sender)`,
  `CREATE INDEX IF NOT EXISTS messages_sender ON ${s}.messages (sender, ts, id)`,
  `CREATE INDEX IF NOT EXISTS messages_recipient ON ${s}.messages (recipient, ts, id, sender) WHERE recipient IS NOT NULL`,
  `CREATE INDEX IF NOT EXISTS messages_type ON ${s}.messages (type, ts, id, sender)`,
  `CREATE INDEX IF NOT EXISTS messages_tags ON ${s}.messages USING gin (tags) WHERE tags IS NOT NULL`,
  `CREATE INDEX IF NOT EXISTS messages_expires ON ${s}.messages (expires) WHERE expires IS NOT NULL`,
  `CREATE TABLE IF NOT EXISTS ${s}.feed (
    seq bigint PRIMARY KEY,
    at timestamptz NOT NULL,
    batch xid8 NOT NULL,
    n integer NOT NULL,
    items text ${compression} NOT NULL
  )`,
  `CREATE INDEX IF NOT EXISTS feed_batch ON ${s}.feed (batch)`,
  // One row, updated by every append: room on its page for HOT updates keeps it from bloating.
  `CREATE TABLE IF NOT EXISTS ${s}.feed_head (one boolean PRIMARY KEY DEFAULT true CHECK (one), seq bigint NOT NULL) WITH (fillfactor = 20)`,
  `INSERT INTO ${s}.feed_head (seq) VALUES (0) ON CONFLICT DO NOTHING`,
  `CREATE TABLE IF NOT EXISTS ${s}.checkpoints (consumer text PRIMARY KEY, position text NOT NULL, updated_at timestamptz NOT NULL)`,
];

const REGISTRY_TABLES = (s: string) => [
  `CREATE TABLE IF NOT EXISTS ${s}.principals (
    id text COLLATE "C" PRIMARY KEY,
    type text NOT NULL,
    name text,
    tags text[] NOT NULL,
    created_at timestamptz NOT NULL,
    last_seen_at timestamptz,
    enabled boolean NOT NULL,
    secret_hash text
  )`,
  `CREATE INDEX IF NOT EXISTS principals_type ON ${s}.principals (type, id)`,
  `CREATE INDEX IF NOT EXISTS principals_tags ON ${s}.principals USING gin (tags)`,
  `CREATE TABLE IF NOT EXISTS ${s}.permissions (
    id text COLLATE "C" PRIMARY KEY,
    issued_to text COLLATE "C",
    principal_for text COLLATE "C",
    action text,
    authorized boolean NOT NULL,
    priority bigint NOT NULL,
    expires timestamptz,
    created_at timestamptz NOT NULL
  )`,
  `CREATE INDEX IF NOT EXISTS permissions_issued_to ON ${s}.permissions (issued_to)`,
  `CREATE INDEX IF NOT EXISTS permissions_principal_for ON ${s}.permissions (principal_for)`,
  `CREATE TABLE IF NOT EXISTS ${s}.records (
    kind text COLLATE "C" NOT NULL,
    key text COLLATE "C" NOT NULL,
    principal text COLLATE "C" NOT NULL,
    value text NOT NULL,
    PRIMARY KEY (kind, key)
  )`,
  // A principal's records, of one kind in key order, and all of them when it is deleted.
  `CREATE INDEX IF NOT EXISTS records_principal ON ${s}.records (principal, kind, key)`,
];

/**
 * The layout of each part this code writes; a database marked with a later one was made by
 * newer code. Registry 2 added `records`: code that knows only 1 would delete a principal and
 * leave its certificates and API keys to whoever registers the id next.
 */
const VERSIONS = { store: 1, registry: 2 } as const;

/**
 * Creates what is missing in one transaction, under an advisory lock on the schema's name:
 * two instances starting at once on an empty database would otherwise race on CREATE ... IF
 * NOT EXISTS (which is not safe against a concurrent create of the same name).
 */
async function migrate(pool: pg.Pool, schema: string, part: 'store' | 'registry'): Promise<void> {
  const s = ident(schema);
  const client = await checkOut(pool);
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [`nitrogen schema ${schema}`]);
    // Only when missing: CREATE SCHEMA checks the right to create one even when it exists.
    if ((await client.query<{ oid: string | null }>('SELECT to_regnamespace($1) AS oid', [schema])).rows[0]?.oid === null) await client.query(`CREATE SCHEMA ${s}`);
    await client.query(`CREATE TABLE IF NOT EXISTS ${s}.meta (key text PRIMARY KEY, value text NOT NULL)`);
    const stored = (await client.query<{ value: string }>(`SELECT value FROM ${s}.meta WHERE key = $1`, [`${part}.version`])).rows[0];
    const version = VERSIONS[part];
    if (stored && Number(stored.value) > version) {
      throw new NitrogenError('NITROGEN_ERR_CONFIG', `postgres ${part}: schema ${schema} has layout ${stored.value}, made by a newer Nitrogen; this one knows ${version}`);
    }
    // lz4 compresses a feed record's JSON several times faster than the default pglz; the
    // server may be built without it.
    const lz4 = (await client.query<{ lz4: boolean }>(`SELECT 'lz4' = ANY(enumvals) AS lz4 FROM pg_settings WHERE name = 'default_toast_compression'`)).rows[0]?.lz4 === true;
    for (const ddl of part === 'store' ? STORE_TABLES(s, lz4 ? 'COMPRESSION lz4' : '') : REGISTRY_TABLES(s)) await client.query(ddl);
    // Raised, never lowered: what this code created is there now.
    await client.query(`INSERT INTO ${s}.meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value WHERE meta.value::int < EXCLUDED.value::int`, [`${part}.version`, String(version)]);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => (client.broken = true));
    throw storeError(`create the ${part} tables in schema ${schema}`, err);
  } finally {
    client.done();
  }
}

/** A pool with `part`'s tables in place: what the store and the registry each start with. A failed migration closes the pool. */
export async function openMigrated(options: PostgresConnectionOptions, part: 'store' | 'registry', logger?: Logger): Promise<pg.Pool> {
  const pool = await connect(options, `postgres ${part}`, logger);
  try {
    await migrate(pool, options.schema, part);
  } catch (err) {
    await pool.end().catch(() => {});
    throw err;
  }
  return pool;
}
