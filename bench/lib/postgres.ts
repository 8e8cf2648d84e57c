import { readFileSync, readdirSync } from 'node:fs';
import { PostgresStore } from '../../adapters/postgres/index.js';
import { PostgresStoreOptions } from '../../adapters/postgres/postgres-store.js';
import { startPostgres, type PostgresServer } from './postgres-server.js';

/**
 * `--store postgres` for the server benchmarks: a throwaway local PostgreSQL (unix socket, the
 * server's defaults, fsync and synchronous_commit on) holding store and registry, a fresh
 * schema per server started, and a count of what each stored.
 */
export interface PostgresBench {
  server: PostgresServer;
  /** The `store` and `registry` configuration of one server, on its own schema. */
  config(schema: string): Record<string, unknown>;
  /** Messages the schema's store holds, counted through the Store port. */
  stored(schema: string): Promise<number>;
  stop(): Promise<void>;
}

export async function startPostgresBench(): Promise<PostgresBench> {
  const server = await startPostgres();
  const options = (schema: string) => ({ url: server.url(), schema });
  return {
    server,
    config: (schema) => ({ store: { use: 'postgres', options: options(schema) }, registry: { use: 'postgres', options: options(schema) } }),
    stored: async (schema) => {
      const store = new PostgresStore(PostgresStoreOptions.parse(options(schema)));
      await store.start();
      try {
        return (await store.feedLag(null)).count;
      } finally {
        await store.stop();
      }
    },
    stop: () => server.stop(),
  };
}

/** CPU seconds of a process: its own and, with `children`, what its ended children used. */
function processCpu(pid: number, children = false): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12]) + (children ? Number(f[13]) + Number(f[14]) : 0)) / 100;
  } catch {
    return 0;
  }
}

/** CPU seconds of every process of a PostgreSQL server: the postmaster, its live children, its ended ones. */
export function postgresCpu(server: PostgresServer): number {
  const postmaster = Number(readFileSync(`${server.dataDir}/postmaster.pid`, 'utf8').split('\n')[0]);
  let total = processCpu(postmaster, true);
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === postmaster) total += processCpu(Number(entry));
    } catch {
      // ended meanwhile
    }
  }
  return total;
}
