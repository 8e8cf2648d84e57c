import pg from 'pg';
import { z } from 'zod';
import { duration, parseDuration } from '../../core/duration.js';
import { NitrogenError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';

/** Options shared by the PostgreSQL store and registry. The URL may hold a password: it is never logged. */
export const PostgresConnectionOptions = z.strictObject({
  url: z.string().regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// connection string'),
  /** The schema holding Nitrogen's tables, created if missing; several deployments can share a database. */
  schema: z
    .string()
    .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'must be a lower-case SQL identifier: letters, digits and _, at most 63')
    .default('nitrogen'),
  /** Connections per instance. */
  poolSize: z.number().int().min(1).max(1000).default(10),
  /** How long `start()` (and taking a new connection later) waits for the server. */
  connectTimeout: duration.default('5s'),
  /**
   * The server cancels a statement running longer than this (a stuck lock, a runaway scan),
   * and ends a session left idle this long in the middle of a transaction.
   */
  statementTimeout: duration.default('30s'),
  /**
   * When a commit counts as done. `off` is not offered: an acknowledged message must survive a
   * crash. With synchronous standbys, `remote_write` / `remote_apply` also wait for them.
   */
  synchronousCommit: z.enum(['on', 'local', 'remote_write', 'remote_apply']).default('on'),
});
export type PostgresConnectionOptions = z.output<typeof PostgresConnectionOptions>;

/** Where a connection string points, without user, password or options: fit for an error message. */
function describeTarget(url: string): string {
  try {
    const parsed = new URL(url);
    const socket = parsed.searchParams.get('host');
    const host = parsed.hostname ? `${parsed.hostname}${parsed.port ? `:${parsed.port}` : ''}` : socket ? `(socket ${socket})` : 'localhost';
    return `postgresql://${host}${parsed.pathname}`;
  } catch {
    return 'the configured server';
  }
}

/** A driver message with anything shaped like URL credentials removed. */
function reason(err: unknown): string {
  return String((err as Error)?.message ?? err)
    .split('\n')[0]!
    .replace(/\/\/[^@/\s]*@/g, '//');
}

/** The option behind a server error that a limit of ours caused, so the message names it. */
const LIMITS: Record<string, string> = { '57014': 'options.statementTimeout', '25P03': 'options.statementTimeout (idle in transaction)' };

export function storeError(what: string, err: unknown): NitrogenError {
  if (err instanceof NitrogenError) return err;
  const limit = /timeout/.test(reason(err)) ? LIMITS[sqlState(err) ?? ''] : undefined;
  return new NitrogenError('NITROGEN_ERR_STORE', `PostgreSQL failed to ${what}: ${reason(err)}${limit ? ` (${limit})` : ''}`, { cause: err });
}

/** The SQLSTATE of a server error, if it is one. */
export function sqlState(err: unknown): string | undefined {
  return typeof (err as { code?: unknown })?.code === 'string' && /^[0-9A-Z]{5}$/.test((err as { code: string }).code) ? (err as { code: string }).code : undefined;
}

/** Deadlock detected or serialization failure: the transaction was rolled back whole and may run again. */
export const isRetryable = (err: unknown) => ['40P01', '40001'].includes(sqlState(err) ?? '');
export const UNIQUE_VIOLATION = '23505';

/** Creates the pool and checks, within `connectTimeout`, that the server answers and fits. */
export async function connect(options: PostgresConnectionOptions, what: string, logger?: Logger): Promise<pg.Pool> {
  const timeout = parseDuration(options.connectTimeout);
  let pool: pg.Pool;
  try {
    pool = new pg.Pool({
      connectionString: options.url,
      max: options.poolSize,
      connectionTimeoutMillis: timeout,
      statement_timeout: parseDuration(options.statementTimeout),
      // A transaction whose client vanished without closing its socket (a silent network
      // failure) would hold its locks, the feed head's among them, until TCP noticed: hours.
      idle_in_transaction_session_timeout: parseDuration(options.statementTimeout),
      keepAlive: true,
      application_name: 'nitrogen',
      options: `-c synchronous_commit=${options.synchronousCommit}`,
    });
  } catch (err) {
    throw new NitrogenError('NITROGEN_ERR_CONFIG', `${what}: options.url is not a valid PostgreSQL connection string: ${reason(err)}`, { cause: err });
  }
  // An idle connection the server closed (a restart, a failover) must not end the process;
  // the pool replaces it and the next query reports any lasting failure.
  pool.on('error', (err) => logger?.warn({ err: { message: reason(err), code: sqlState(err) } }, `${what}: idle PostgreSQL connection lost`));
  let facts: { version: number; encoding: string };
  try {
    const { rows } = await pool.query<{ version: string; encoding: string }>("SELECT current_setting('server_version_num') AS version, current_setting('server_encoding') AS encoding");
    facts = { version: Number(rows[0]!.version), encoding: rows[0]!.encoding };
  } catch (err) {
    await pool.end().catch(() => {});
    if (err instanceof TypeError || /invalid url|connection string/i.test(String((err as Error).message))) {
      throw new NitrogenError('NITROGEN_ERR_CONFIG', `${what}: options.url is not a valid PostgreSQL connection string: ${reason(err)}`, { cause: err });
    }
    throw new NitrogenError('NITROGEN_ERR_STORE', `${what}: cannot use PostgreSQL at ${describeTarget(options.url)} (connect timeout ${timeout} ms): ${reason(err)}`, { cause: err });
  }
  // pg_current_xact_id and xid8 (the feed's batch tag) arrived in PostgreSQL 13.
  const problem =
    facts.version < 130000
      ? `PostgreSQL 13 or later is needed, the server is ${Math.floor(facts.version / 10000)}`
      : facts.encoding !== 'UTF8'
        ? `the database must use the UTF8 encoding (envelopes are Unicode text), it uses ${facts.encoding}`
        : null;
  if (problem) {
    await pool.end().catch(() => {});
    throw new NitrogenError('NITROGEN_ERR_CONFIG', `${what}: ${problem} (${describeTarget(options.url)})`);
  }
  return pool;
}

/**
 * Runs `work` in a transaction on one connection; a deadlock or serialization failure rolls it
 * back whole, so it runs again (at most `attempts` times). Every other failure is thrown as is.
 */
export async function transaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>, attempts = 3): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const client = await checkOut(pool);
    try {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => (client.broken = true));
      if (attempt >= attempts || !isRetryable(err)) throw err;
    } finally {
      client.done();
    }
  }
}

/**
 * A connection taken from the pool, with a listener for its `error` event while it is out:
 * the pool listens only on idle connections, and an `error` nobody listens to (the server
 * ending the session) would end the process. The listener is attached in the pool's callback,
 * not after an `await`: the message completing a new connection and the server's notice that
 * it ends that session can arrive in one read, and are parsed before any promise continues.
 * A connection that failed is destroyed on release, not reused.
 */
export function checkOut(pool: pg.Pool): Promise<pg.PoolClient & { broken: boolean; done(): void }> {
  return new Promise((resolve, reject) => {
    pool.connect((err, taken) => {
      if (err || !taken) return reject(err ?? new Error('the pool gave no connection'));
      const client = taken as pg.PoolClient & { broken: boolean; done(): void };
      client.broken = false;
      const onError = () => (client.broken = true);
      client.on('error', onError);
      client.done = () => {
        client.off('error', onError);
        client.release(client.broken);
      };
      resolve(client);
    });
  });
}

/** Double-quotes an identifier already checked by the options' pattern. */
export const ident = (name: string) => `"${name}"`;
