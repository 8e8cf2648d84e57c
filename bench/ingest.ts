import Database from 'better-sqlite3';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../test/helpers/temp.js';
import { LoadGenerator, carTelemetry, type LoadResult } from './lib/load.js';
import { flags, printHeader } from './lib/machine.js';
import { adminToken, registerDevices, spawnBareAedes, spawnServer, stopProcess } from './lib/servers.js';

/**
 * `npm run bench:ingest`: durable QoS 1 MQTT ingest into Nitrogen (embedded SQLite store)
 * against bare aedes in the same run, with the same load generator, connections and payloads.
 */
const options = flags({ connections: 1000, window: 10, warmup: 3, seconds: 10, rounds: 1, rate: 0, profile: '', store: 'sqlite' });
const SECRET = 'bench-admin-secret-0123456789';
printHeader('MQTT QoS 1 ingest: Nitrogen (SQLite, durable) vs bare aedes');
const pace = options.rate > 0 ? `paced to ${options.rate} msgs/s in total` : 'as fast as acknowledgements allow';
console.log(`load:    ${options.connections} connections, ${options.window} PUBLISHes in flight each, ${pace}, ~200-byte car telemetry JSON, ${options.warmup}s warm-up + ${options.seconds}s measured`);

const payloads = carTelemetry(64);

async function measureAedes(): Promise<LoadResult> {
  const aedes = await spawnBareAedes();
  try {
    const clients = Array.from({ length: options.connections }, (_, i) => ({ clientId: `car-${i}`, topic: `devices/car-${i}/messages/telemetry` }));
    const load = await LoadGenerator.connect({ host: '127.0.0.1', port: aedes.port, clients, window: options.window, rate: options.rate, payloads, localAddresses: ['127.0.0.1'], connectConcurrency: 100 });
    const result = await load.run(options.warmup, options.seconds, aedes.child.pid!);
    await load.stop();
    return result;
  } finally {
    await stopProcess(aedes.child);
  }
}

async function measureNitrogen(): Promise<LoadResult & { stored: number; ackedTotal: number }> {
  const dir = tempDir('nitrogen-bench-');
  // --profile <dir>: CPU profiles of the server's threads, for `node --cpu-prof`-style analysis.
  const nodeArgs = options.profile ? ['--cpu-prof', '--cpu-prof-dir', options.profile] : [];
  // --store discard: the same server keeping nothing, to see what the rest of the pipeline allows on this machine.
  const config = join(dir.path, 'nitrogen.config.json');
  const store = options.store === 'discard' ? fileURLToPath(new URL('./lib/discard-store.js', import.meta.url)) : options.store;
  writeFileSync(config, JSON.stringify({ store: { use: store } }));
  const server = await spawnServer({ NITROGEN_DATA_DIR: dir.path, NITROGEN_CONFIG: config, NITROGEN_ADMIN_SECRET: SECRET, NITROGEN_LOG_LEVEL: 'warn' }, process.cwd(), nodeArgs);
  try {
    const token = await adminToken(server.rest, SECRET);
    const devices = await registerDevices(server.rest, token, options.connections);
    const url = new URL(server.mqtt);
    const clients = devices.map((d) => ({ clientId: d.id, username: d.id, password: d.secret, topic: `devices/${d.id}/messages/telemetry` }));
    const load = await LoadGenerator.connect({ host: url.hostname, port: Number(url.port), clients, window: options.window, rate: options.rate, payloads, localAddresses: ['127.0.0.1'], connectConcurrency: 100 });
    const result = await load.run(options.warmup, options.seconds, server.child.pid!);
    await load.stop();
    await stopProcess(server.child);
    // Every acknowledged message must be in the store: count what is there (a graceful stop compacts the journal into chunks).
    let stored = 0;
    if (options.store === 'sqlite') {
      const db = new Database(join(dir.path, 'messages.db'), { readonly: true });
      stored = (db.prepare('SELECT coalesce(sum(count), 0) AS n FROM chunks').get() as { n: number }).n;
      db.close();
    }
    return { ...result, stored, ackedTotal: result.acked };
  } finally {
    await stopProcess(server.child);
    dir.remove();
  }
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const ms = (n: number) => n.toFixed(1);
for (let round = 1; round <= options.rounds; round++) {
  const aedes = await measureAedes();
  const nitrogen = await measureNitrogen();
  console.log(`\nround ${round}`);
  console.log(`| server | msgs/s | ack p50 ms | ack p99 ms | ack max ms | server CPU µs/msg (main thread) | load generator CPU µs/msg | errors |`);
  console.log(`|---|---:|---:|---:|---:|---:|---:|---:|`);
  const row = (label: string, r: LoadResult) => `| ${label} | ${fmt(r.rate)} | ${ms(r.p50)} | ${ms(r.p99)} | ${ms(r.max)} | ${ms(r.serverCpuUs)} (${ms(r.serverMainCpuUs)}) | ${ms(r.loadCpuUs)} | ${r.errors.length} |`;
  console.log(row('bare aedes (no auth, no store)', aedes));
  const label = options.store === 'sqlite' ? 'Nitrogen (auth, validation, SQLite: journal fdatasync per group commit)' : `Nitrogen (auth, validation, store "${options.store}")`;
  console.log(row(label, nitrogen));
  console.log(`ratio Nitrogen / bare aedes: ${(nitrogen.rate / aedes.rate).toFixed(2)}; by CPU per message (server + load generator): ${((aedes.serverCpuUs + aedes.loadCpuUs) / (nitrogen.serverCpuUs + nitrogen.loadCpuUs)).toFixed(2)}`);
  if (options.store === 'sqlite') console.log(`stored after stop: ${fmt(nitrogen.stored)} messages (at least every acknowledged one, warm-up included)`);
  for (const e of [...aedes.errors, ...nitrogen.errors].slice(0, 5)) console.log(`error: ${e}`);
}
