import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SqliteStore } from '../../adapters/sqlite/index.js';
import { tempDir } from './temp-dir.js';
import type { LoadClient } from './load-worker.js';
import type { Target } from './point.js';
import { adminToken, registerDevices, spawnBareAedes, spawnServer, stopProcess, type ServerProcess } from './servers.js';

/** An MQTT server under load: where to connect and who connects. */
export interface MqttTarget extends Target {
  host: string;
  port: number;
  clients: LoadClient[];
  /** Over TLS: the CA the load generator trusts. */
  tlsCa?: string;
}

/** A server certificate for the TLS runs: files, and the CA that signed it. */
export interface BenchTls {
  certFile: string;
  keyFile: string;
  ca: string;
}

export const ADMIN_SECRET = 'bench-admin-secret-0123456789';

/** Bare aedes with its defaults (no authentication, in-memory persistence): the peer. */
export async function startAedes(connections: number, prefix = 'car', tls?: BenchTls): Promise<MqttTarget> {
  const aedes = await spawnBareAedes(tls ? { BENCH_TLS_CERT: tls.certFile, BENCH_TLS_KEY: tls.keyFile } : {});
  const clients = Array.from({ length: connections }, (_, i) => ({ clientId: `${prefix}-${i}`, topic: `devices/${prefix}-${i}/messages/telemetry` }));
  return {
    name: tls ? 'bare aedes, TLS' : 'bare aedes',
    pid: aedes.child.pid!,
    host: '127.0.0.1',
    port: aedes.port,
    clients,
    ...(tls ? { tlsCa: tls.ca } : {}),
    stop: once(async () => {
      await stopProcess(aedes.child);
      return { stored: null };
    }),
  };
}

export interface NitrogenTarget extends MqttTarget {
  server: ServerProcess;
  dataDir: string;
  token: string;
}

export interface NitrogenOptions {
  /** Devices to register, each with its own credentials. */
  connections: number;
  /** Arguments for node, e.g. `--cpu-prof`. */
  nodeArgs?: string[];
  prefix?: string;
  /**
   * The store plugin: `sqlite` (the embedded default, durable), e.g. `memory`, or `discard`
   * (keeps nothing: the ceiling the rest of the pipeline allows on the machine).
   */
  store?: string;
  /** MQTT over TLS with this certificate: the load connects to the TLS port. */
  tls?: BenchTls;
  /** Configuration beyond the store's name (e.g. `store` and `registry` with options), and how to count what it stored. */
  config?: Record<string, unknown>;
  countStored?: () => Promise<number>;
}

/**
 * The real CLI with the embedded default configuration (SQLite store and registry in a fresh
 * data directory, MQTT and REST), only the store replaced when asked, and devices registered.
 */
export async function startNitrogen({ connections, nodeArgs = [], prefix = 'car', store = 'sqlite', tls, config: extra = {}, countStored }: NitrogenOptions): Promise<NitrogenTarget> {
  const dir = tempDir('nitrogen-bench-');
  const config = join(dir.path, 'nitrogen.config.json');
  const use = store === 'discard' ? fileURLToPath(new URL('./discard-store.js', import.meta.url)) : store;
  // A few senders push here far beyond any device's quota (hundreds to thousands of messages a
  // second each), to find the pipeline's ceiling: the quota is lifted, though still charged.
  const unlimited = { perSecond: 1e12, burst: 1e12 };
  const plugins = tls ? { plugins: [{ use: 'mqtt', options: { tlsPort: 0, tls: { cert: tls.certFile, key: tls.keyFile } } }, { use: 'rest' }] } : {};
  writeFileSync(config, JSON.stringify({ store: { use }, quota: { messages: unlimited, bytes: unlimited }, ...plugins, ...extra }));
  const server = await spawnServer({ NITROGEN_CONFIG: config, NITROGEN_DATA_DIR: dir.path, NITROGEN_ADMIN_SECRET: ADMIN_SECRET, NITROGEN_LOG_LEVEL: 'warn' }, dir.path, nodeArgs);
  try {
    const token = await adminToken(server.rest, ADMIN_SECRET);
    const devices = await registerDevices(server.rest, token, connections, prefix);
    const mqtts = tls ? ((await (await fetch(`${server.rest}/headwaiter`)).json()) as { endpoints: { mqtts: string } }).endpoints.mqtts : undefined;
    const url = new URL(mqtts ?? server.mqtt);
    const clients = devices.map((d) => ({ clientId: d.id, username: d.id, password: d.secret, topic: `devices/${d.id}/messages/telemetry` }));
    return {
      name: tls ? 'Nitrogen, TLS' : 'Nitrogen',
      pid: server.child.pid!,
      host: url.hostname,
      port: Number(url.port),
      clients,
      server,
      dataDir: dir.path,
      token,
      ...(tls ? { tlsCa: tls.ca } : {}),
      stop: once(async () => {
        await stopProcess(server.child);
        try {
          return { stored: countStored ? await countStored() : store === 'sqlite' ? await storedMessages(dir.path) : null };
        } finally {
          dir.remove();
        }
      }),
    };
  } catch (err) {
    await stopProcess(server.child);
    dir.remove();
    throw err;
  }
}

/** Messages in a stopped server's store, counted through the Store port (so any storage format counts right). */
async function storedMessages(dataDir: string): Promise<number> {
  const store = new SqliteStore(dataDir, { file: 'messages.db' });
  await store.start();
  try {
    return (await store.feedLag(null)).count;
  } finally {
    await store.stop();
  }
}

function once<T>(f: () => Promise<T>): () => Promise<T> {
  let result: Promise<T> | undefined;
  return () => (result ??= f());
}
