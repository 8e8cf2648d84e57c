import { request } from 'node:http';
import { randomBytes } from 'node:crypto';
import { defaultCatalog } from '../../catalog.js';
import type { NitrogenConfigInput } from '../../core/config.js';
import type { PostgresServer } from '../../bench/lib/postgres-server.js';
import type { RedisServer } from '../../bench/lib/redis-server.js';
import { startServer, type TestServer } from './server.js';

/**
 * Instances of one deployment in this process: a shared PostgreSQL schema (store and registry),
 * one token key, and a Redis bus with a prefix of their own.
 */
export class TestCluster {
  readonly servers: TestServer[] = [];
  readonly schema = 'c_' + randomBytes(5).toString('hex');
  readonly prefix = `t${randomBytes(4).toString('hex')}:`;

  constructor(
    private readonly pg: PostgresServer,
    private readonly redis: RedisServer,
  ) {}

  config(instanceId: string, extra: NitrogenConfigInput = {}): NitrogenConfigInput {
    const options = { url: this.pg.url(), schema: this.schema };
    return {
      store: { use: 'postgres', options },
      registry: { use: 'postgres', options },
      // Permission records are reloaded only when an event says so: a refresh cannot pass a test.
      identity: { use: 'default', options: { tokenSecret: 'shared-token-secret-of-the-test-cluster', permissionRefresh: '1h' } },
      health: { probeInterval: '50ms', probeTimeout: '1s' },
      ...extra,
      cluster: { instanceId, bus: { use: 'redis', options: { url: this.redis.url, prefix: this.prefix, maxRetryDelayMs: 100 } }, ...extra.cluster },
    };
  }

  async start(instanceId: string, extra: NitrogenConfigInput = {}): Promise<TestServer> {
    const server = await startServer(this.config(instanceId, extra), undefined, defaultCatalog);
    this.servers.push(server);
    return server;
  }

  async stop(): Promise<void> {
    for (const server of this.servers.splice(0)) await server.stop();
  }
}

/** An SSE stream read as it comes: `next(predicate)` resolves with the first envelope that fits. */
export interface EventStream {
  next(predicate: (envelope: any) => boolean, ms?: number): Promise<any>;
  close(): void;
}

export function openEventStream(server: TestServer, query: string, token: string): Promise<EventStream> {
  return new Promise((resolve, reject) => {
    const seen: any[] = [];
    const waiting: Array<{ predicate: (e: any) => boolean; resolve: (e: any) => void }> = [];
    let buffer = '';
    const req = request(`${server.restUrl}/messages/stream?${query}`, { headers: { authorization: `Bearer ${token}` } }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`stream answered ${res.statusCode}`));
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          const event = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (event.startsWith(': connected')) resolve(stream);
          const data = /^data: (.*)$/m.exec(event)?.[1];
          if (!data) continue;
          const envelope = JSON.parse(data);
          seen.push(envelope);
          for (const w of waiting.splice(0)) {
            if (w.predicate(envelope)) w.resolve(envelope);
            else waiting.push(w);
          }
        }
      });
    });
    req.on('error', reject);
    req.end();
    const stream: EventStream = {
      next: (predicate, ms = 10_000) =>
        new Promise((done, fail) => {
          const found = seen.find(predicate);
          if (found) return done(found);
          const timer = setTimeout(() => fail(new Error(`no matching event within ${ms} ms`)), ms);
          waiting.push({ predicate, resolve: (e) => (clearTimeout(timer), done(e)) });
        }),
      close: () => req.destroy(),
    };
  });
}

/** Polls `check` until it returns a value other than undefined (the state the caller waits for). */
export async function eventually<T>(check: () => Promise<T | undefined>, what: string, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The value of one metric line (`name` with its labels as written), or undefined. */
export async function metric(server: TestServer, line: string): Promise<number | undefined> {
  const text = (await server.api('GET', '/metrics')).body as string;
  const found = text.split('\n').find((l) => l.startsWith(line + ' '));
  return found === undefined ? undefined : Number(found.slice(line.length + 1));
}
