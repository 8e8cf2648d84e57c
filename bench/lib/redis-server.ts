import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, createConnection } from 'node:net';
import { join } from 'node:path';
import { tempDir } from './temp-dir.js';

/**
 * A throwaway Redis server for the tests and benchmarks: Debian's `redis-server` on a free
 * loopback port with its files in a temporary directory. It keeps an append-only file, as a
 * deployment that shares MQTT sessions should (docs/cluster.md), so `restart()` brings back
 * what it held. `REDIS_SERVER` names another binary.
 */
export interface RedisServer {
  url: string;
  port: number;
  /** Stops the server (SIGTERM: it writes what it holds) and starts it again on the same port and files. */
  restart(): Promise<void>;
  /** Stops it until `start()`. */
  halt(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}

function findRedisServer(): string | null {
  if (process.env.REDIS_SERVER) return existsSync(process.env.REDIS_SERVER) ? process.env.REDIS_SERVER : null;
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/bin', '/usr/sbin'])) {
    if (dir && existsSync(join(dir, 'redis-server'))) return join(dir, 'redis-server');
  }
  return null;
}

let skipNoticed = false;

/**
 * Whether the Redis tests run: true with the binary; without it, false outside CI (after printing,
 * once per run, one line saying so) and an error in CI, where `.ci/run` installs it.
 */
export function redisAvailable(): boolean {
  if (findRedisServer()) return true;
  const missing = 'Redis tests: no redis-server on PATH or REDIS_SERVER; install the Debian package redis-server';
  if (process.env.CI === 'true') throw new Error(`${missing} (required in CI)`);
  if (!skipNoticed) console.log(`${missing}: skipped`);
  skipNoticed = true;
  return false;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once the server answers PING on `port`. */
async function answers(port: number, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}:\n${log()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = createConnection({ port, host: '127.0.0.1' });
      socket.once('error', () => resolve(false));
      socket.once('connect', () => socket.write('PING\r\n'));
      socket.once('data', (data) => {
        socket.destroy();
        resolve(data.toString().startsWith('+PONG'));
      });
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`redis-server did not answer on port ${port}:\n${log()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function startRedis(): Promise<RedisServer> {
  const bin = findRedisServer();
  if (!bin) throw new Error('no redis-server found (install the Debian package redis-server)');
  const dir = tempDir('nitrogen-redis-');
  const port = await freePort();
  const logFile = join(dir.path, 'redis.log');
  const log = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(-2000) : '');
  let child: ChildProcess | undefined;
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir.path, '--save', '', '--appendonly', 'yes', '--appendfsync', 'everysec', '--logfile', logFile, '--daemonize', 'no'];
  const start = async () => {
    child = spawn(bin, args, { stdio: 'ignore' });
    await answers(port, child, log);
  };
  const halt = async () => {
    const running = child;
    if (!running || running.exitCode !== null) return;
    const exited = new Promise((resolve) => running.once('exit', resolve));
    running.kill('SIGTERM');
    await exited;
  };
  const stopNow = () => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    dir.remove();
  };
  await start();
  // Mocha's --exit ends the process without `after` hooks of other files: never leave a server behind.
  process.once('exit', stopNow);
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    restart: async () => {
      await halt();
      await start();
    },
    halt,
    start,
    stop: async () => {
      process.removeListener('exit', stopNow);
      await halt();
      dir.remove();
    },
  };
}
