import { MongoBulkWriteError, MongoClient, MongoServerError, type Db } from 'mongodb';
import { z } from 'zod';
import { duration, parseDuration } from '../../core/duration.js';
import { NitrogenError } from '../../core/errors.js';

/** Options shared by the MongoDB store and registry. The URL may hold a password: it is never logged. */
export const MongoConnectionOptions = z.strictObject({
  url: z.string().regex(/^mongodb(\+srv)?:\/\//, 'must be a mongodb:// or mongodb+srv:// connection string'),
  database: z
    .string()
    .regex(/^[^/\\. "$]{1,63}$/, 'must be a MongoDB database name')
    .default('nitrogen'),
  maxPoolSize: z.number().int().min(1).max(1000).default(20),
  /** Write concern: acknowledged by a majority of the replica set, and journaled, by default. */
  w: z.union([z.literal('majority'), z.number().int().min(0)]).default('majority'),
  journal: z.boolean().default(true),
  /** How long an operation (and `start()`) waits to find a server before it fails. */
  serverSelectionTimeout: duration.default('5s'),
});
export type MongoConnectionOptions = z.output<typeof MongoConnectionOptions>;

/** The connection string without credentials or query options, fit for an error message. */
function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//').split('?')[0]!;
}

/** Connects, failing within the server-selection timeout with a message that names the hosts. */
export async function connect(options: MongoConnectionOptions, what: string): Promise<{ client: MongoClient; db: Db }> {
  const timeout = parseDuration(options.serverSelectionTimeout);
  let client: MongoClient;
  try {
    client = new MongoClient(options.url, {
      appName: 'nitrogen',
      maxPoolSize: options.maxPoolSize,
      serverSelectionTimeoutMS: timeout,
      connectTimeoutMS: timeout,
      writeConcern: { w: options.w, journal: options.journal },
    });
  } catch (err) {
    const reason = (err as Error).message.replace(/\/\/[^@/\s]*@/g, '//');
    throw new NitrogenError('NITROGEN_ERR_CONFIG', `${what}: options.url is not a valid MongoDB connection string: ${reason}`, { cause: err });
  }
  try {
    await client.connect();
  } catch (err) {
    await client.close().catch(() => {});
    throw new NitrogenError('NITROGEN_ERR_STORE', `${what}: cannot reach MongoDB at ${redactUrl(options.url)} within ${timeout} ms: ${(err as Error).message.split('\n')[0]}`, { cause: err });
  }
  return { client, db: client.db(options.database) };
}

export const DUPLICATE_KEY = 11000;

/**
 * The indexes of a bulk insert's documents refused as duplicate keys. Any other failure
 * (another write error, or a write concern not met) is thrown as NITROGEN_ERR_STORE.
 */
export function duplicatesOf(err: unknown, what: string): number[] {
  if (err instanceof MongoBulkWriteError && !err.result.getWriteConcernError()) {
    const errors = ([] as { code: number; index: number }[]).concat(err.writeErrors as never);
    if (errors.length > 0 && errors.every((e) => e.code === DUPLICATE_KEY)) return errors.map((e) => e.index);
  }
  throw storeError(what, err);
}

export function isDuplicateKey(err: unknown): boolean {
  return err instanceof MongoServerError && err.code === DUPLICATE_KEY;
}

export function storeError(what: string, err: unknown): NitrogenError {
  if (err instanceof NitrogenError) return err;
  return new NitrogenError('NITROGEN_ERR_STORE', `MongoDB failed to ${what}: ${(err as Error).message?.split('\n')[0]}`, { cause: err });
}
