import { AzureNamedKeyCredential, RestError, TableClient, type TableServiceClientOptions } from '@azure/data-tables';
import { z } from 'zod';
import { duration, parseDuration } from '../../core/duration.js';
import { NitrogenError } from '../../core/errors.js';

/** Options shared by the Azure Tables store and registry. The connection string and key are secrets. */
export const AzureConnectionOptions = z.strictObject({
  /** `DefaultEndpointsProtocol=…;AccountName=…;AccountKey=…` (or with `TableEndpoint=` for Azurite). */
  connectionString: z.string().min(1).optional(),
  account: z.string().min(1).optional(),
  accountKey: z.string().min(1).optional(),
  /** Table service URL; defaults to `https://<account>.table.core.windows.net`. */
  endpoint: z.url().optional(),
  /** Prefix of every table name, so several deployments can share an account. */
  tablePrefix: z
    .string()
    .regex(/^[A-Za-z][A-Za-z0-9]{0,39}$/, 'must be a letter then up to 39 letters or digits')
    .default('nitrogen'),
  /** How long `start()` waits for the service before it fails. */
  connectTimeout: duration.default('10s'),
});
export type AzureConnectionOptions = z.output<typeof AzureConnectionOptions>;

export function requireCredentials(options: { connectionString?: string; account?: string; accountKey?: string }, ctx: z.RefinementCtx): void {
  const byString = options.connectionString !== undefined;
  const byKey = options.account !== undefined || options.accountKey !== undefined;
  if (byString === byKey) ctx.addIssue({ code: 'custom', message: 'give either connectionString, or account and accountKey', path: [] });
  else if (byKey && (options.account === undefined || options.accountKey === undefined)) ctx.addIssue({ code: 'custom', message: 'account and accountKey go together', path: [] });
}

/** One table of the account, opened from the options; knows its URL for messages (never the key). */
export interface Table {
  client: TableClient;
  endpoint: string;
}

export function openTable(options: AzureConnectionOptions, name: string, what: string): Table {
  const tableName = options.tablePrefix + name;
  if (options.connectionString !== undefined) {
    const endpoint = /TableEndpoint=([^;]+)/i.exec(options.connectionString)?.[1] ?? accountUrl(/AccountName=([^;]+)/i.exec(options.connectionString)?.[1] ?? '?');
    try {
      return { client: TableClient.fromConnectionString(options.connectionString, tableName, clientOptions(endpoint)), endpoint };
    } catch (err) {
      // The client's own message may quote the string, and with it the key: not repeated here.
      throw new NitrogenError('NITROGEN_ERR_CONFIG', `${what}: options.connectionString is not an Azure Storage connection string (AccountName=…;AccountKey=…)`, { cause: err });
    }
  }
  const endpoint = options.endpoint ?? accountUrl(options.account!);
  const credential = new AzureNamedKeyCredential(options.account!, options.accountKey!);
  return { client: new TableClient(endpoint, tableName, credential, clientOptions(endpoint)), endpoint };
}

function accountUrl(account: string): string {
  return `https://${account}.table.core.windows.net`;
}

function clientOptions(endpoint: string): TableServiceClientOptions {
  // Plain HTTP only for an explicit http:// endpoint (Azurite); a few quick retries, so a
  // request fails in seconds, not minutes, when the service is gone.
  return { allowInsecureConnection: endpoint.startsWith('http:'), retryOptions: { maxRetries: 3, retryDelayInMs: 200, maxRetryDelayInMs: 2000 } };
}

/** Creates the tables (if missing), failing within `connectTimeout` with a message that names the endpoint. */
export async function createTables(tables: Table[], connectTimeout: string | number, what: string): Promise<void> {
  const ms = parseDuration(connectTimeout);
  const signal = AbortSignal.timeout(ms);
  try {
    for (const table of tables) await table.client.createTable({ abortSignal: signal });
  } catch (err) {
    const endpoint = tables[0]?.endpoint;
    const status = err instanceof RestError ? err.statusCode : undefined;
    const reason = status === 403 ? 'the account name or key was refused' : signal.aborted ? `no answer within ${ms} ms` : (err as Error).message.split('\n')[0];
    throw new NitrogenError('NITROGEN_ERR_STORE', `${what}: cannot use Azure Tables at ${endpoint}: ${reason}`, { cause: err });
  }
}

export function statusOf(err: unknown): number | undefined {
  return err instanceof RestError ? err.statusCode : undefined;
}

/** The operation of a failed transaction that Azure names in its message (`"3:The specified entity…"`). */
export function failedIndex(err: unknown): number | undefined {
  const match = err instanceof RestError ? /^(\d+):/.exec(err.message) : null;
  return match ? Number(match[1]) : undefined;
}

/** Wraps a driver error into NITROGEN_ERR_STORE, keeping it as `cause`. */
export function storeError(what: string, err: unknown): NitrogenError {
  if (err instanceof NitrogenError) return err;
  const status = statusOf(err);
  return new NitrogenError('NITROGEN_ERR_STORE', `Azure Tables failed to ${what}${status ? ` (HTTP ${status})` : ''}`, { cause: err });
}

/** Runs `fn` over `items` with at most `limit` calls in flight; rejects with the first failure. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (next < items.length && !failed) {
      const i = next++;
      try {
        results[i] = await fn(items[i]!, i);
      } catch (err) {
        failed = true; // start nothing more: the call has failed
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
