import { execFile, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { tempDir } from './temp-dir.js';

const run = promisify(execFile);

/**
 * A throwaway PostgreSQL server for the tests and benchmarks: `initdb` into a temporary
 * directory and `pg_ctl start` with its unix socket in that directory and no TCP listener,
 * so it needs no free port and nothing outside the directory. Debian's `postgresql` package
 * puts the binaries under /usr/lib/postgresql/<major>/bin; `PG_BIN` names another directory.
 * `initdb` refuses to run as root, so as root the server runs as the `postgres` user that
 * the package creates.
 */
export interface PostgresServer {
  /** A connection string for the superuser `nitrogen` (trust authentication, socket only). */
  url(database?: string): string;
  socketDir: string;
  /** The cluster's data directory (its postmaster.pid names the server process). */
  dataDir: string;
  version: number;
  /** Kills the server as a crash would (`pg_ctl stop -m immediate`: no checkpoint) and starts it again, recovering from its WAL. */
  crashAndRestart(): Promise<void>;
  stop(): Promise<void>;
}

/** The newest installed PostgreSQL's bin directory, or null when there is none. */
export function findPostgresBin(): string | null {
  if (process.env.PG_BIN) return existsSync(join(process.env.PG_BIN, 'initdb')) ? process.env.PG_BIN : null;
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return null;
  const majors = readdirSync(root)
    .filter((v) => /^\d+$/.test(v) && existsSync(join(root, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return majors.length ? join(root, majors[0]!, 'bin') : null;
}

let skipNoticed = false;

/**
 * Whether the PostgreSQL tests run: true with the binaries; without them, false outside CI
 * (after printing, once per run, one line saying so) and an error in CI, where `.ci/run` installs them.
 */
export function postgresAvailable(): boolean {
  if (findPostgresBin()) return true;
  const missing = 'PostgreSQL tests: no PostgreSQL binaries (initdb) under /usr/lib/postgresql/*/bin or PG_BIN; install the Debian package postgresql';
  if (process.env.CI === 'true') throw new Error(`${missing} (required in CI)`);
  if (!skipNoticed) console.log(`${missing}: skipped`);
  skipNoticed = true;
  return false;
}

function userIds(name: string): { uid: number; gid: number } | null {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${name}:`));
  if (!line) return null;
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

export async function startPostgres(): Promise<PostgresServer> {
  const bin = findPostgresBin();
  if (!bin) throw new Error('no PostgreSQL binaries found (install the Debian package postgresql)');
  const dir = tempDir('nitrogen-pg-');
  const data = join(dir.path, 'data');
  const socketDir = join(dir.path, 'sock');
  mkdirSync(socketDir);
  const asRoot = process.getuid?.() === 0;
  const owner = asRoot ? userIds('postgres') : null;
  if (asRoot && !owner) throw new Error('running as root, and there is no postgres user to run PostgreSQL as (the postgresql package creates it)');
  if (owner) for (const path of [dir.path, socketDir]) chownSync(path, owner.uid, owner.gid);
  // As root, runuser drops to the postgres user for initdb and the server alike.
  const command = (tool: string, args: string[]): [string, string[]] => (owner ? ['runuser', ['-u', 'postgres', '--', join(bin, tool), ...args]] : [join(bin, tool), args]);
  const exec = async (tool: string, args: string[]) => {
    const [file, argv] = command(tool, args);
    try {
      await run(file, argv, { cwd: dir.path, timeout: 60_000 });
    } catch (err) {
      const e = err as { stderr?: string; stdout?: string };
      throw new Error(`${tool} failed: ${(err as Error).message}\n${e.stdout ?? ''}${e.stderr ?? ''}${existsSync(join(dir.path, 'server.log')) ? readFileSync(join(dir.path, 'server.log'), 'utf8') : ''}`, { cause: err });
    }
  };
  // --no-sync: the cluster is thrown away; the server itself keeps fsync and synchronous_commit on.
  await exec('initdb', ['-D', data, '-U', 'nitrogen', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
  const serverOptions = `-c listen_addresses='' -c unix_socket_directories='${socketDir}' -c max_connections=200 -c deadlock_timeout=100ms`;
  const start = () => exec('pg_ctl', ['start', '-D', data, '-w', '-t', '60', '-l', join(dir.path, 'server.log'), '-o', serverOptions]);
  await start();
  const version = Number((await run(join(bin, 'postgres'), ['--version'])).stdout.match(/(\d+)\.\d+/)?.[1]);

  let stopped = false;
  const stopNow = () => {
    if (stopped) return;
    stopped = true;
    const [file, argv] = command('pg_ctl', ['stop', '-D', data, '-m', 'immediate', '-w']);
    spawnSync(file, argv, { stdio: 'ignore', timeout: 30_000 });
    dir.remove();
  };
  // Mocha's --exit ends the process without `after` hooks of other files: never leave a server behind.
  process.once('exit', stopNow);
  return {
    url: (database = 'postgres') => `postgresql://nitrogen@/${database}?host=${encodeURIComponent(socketDir)}`,
    socketDir,
    dataDir: data,
    version,
    crashAndRestart: async () => {
      await exec('pg_ctl', ['stop', '-D', data, '-m', 'immediate', '-w']);
      await start();
    },
    stop: async () => {
      process.removeListener('exit', stopNow);
      stopNow();
    },
  };
}

let shared: Promise<PostgresServer> | undefined;

/** One server for the whole test process, started on first use and stopped when the process exits. */
export function sharedPostgres(): Promise<PostgresServer> {
  return (shared ??= startPostgres());
}
