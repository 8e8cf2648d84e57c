import { randomBytes } from 'node:crypto';
import { AzureStoreOptions } from '../adapters/azure-tables/azure-store.js';
import { AzureTablesStore } from '../adapters/azure-tables/index.js';
import { MemoryStore } from '../adapters/memory/index.js';
import { MongoStore } from '../adapters/mongodb/index.js';
import { MongoStoreOptions } from '../adapters/mongodb/mongo-store.js';
import { PostgresStore } from '../adapters/postgres/index.js';
import { PostgresStoreOptions } from '../adapters/postgres/postgres-store.js';
import { SqliteStore } from '../adapters/sqlite/index.js';
import { newMessageId, type Message } from '../core/message.js';
import type { Store } from '../core/ports/store.js';
import { startAzurite } from './lib/azurite.js';
import { tempDir } from './lib/temp-dir.js';
import { findPostgresBin, startPostgres } from './lib/postgres-server.js';
import { flags, printHeader } from './lib/machine.js';

/**
 * `npm run bench:stores`: append, query and feed rates of each Store adapter, driven directly
 * (no server), with as many appends in flight as the adapter asks the group commit for.
 */
const options = flags({ messages: 20_000, azureMessages: 3_000, batch: 100, devices: 100, queries: 200 });
printHeader('Store adapters: append, query and feed rates');
console.log(`load:    ~200-byte car telemetry from ${options.devices} devices, appends of ${options.batch} messages; queries: latest 100 of one device`);

let seq = 0;
function telemetry(count: number): Message[] {
  return Array.from({ length: count }, () => {
    const n = seq++;
    const now = Date.UTC(2026, 0, 1) + n * 10;
    return {
      id: newMessageId(now),
      type: 'telemetry',
      from: `car-${n % options.devices}`,
      ts: new Date(now).toISOString(),
      body: { speed: 40 + (n % 80), rpm: 900 + (n % 5000), lat: 52.52 + (n % 1000) / 1e5, lon: 13.4 + (n % 1000) / 1e5, fuel: 0.5, odometer: 120_000 + n },
    };
  });
}

interface Result {
  adapter: string;
  messages: number;
  appendRate: number;
  queryRate: number;
  queryP50: number;
  walkRate: number;
  feedRate: number;
}

async function measure(adapter: string, store: Store, messages: number): Promise<Result> {
  const batches = Array.from({ length: Math.ceil(messages / options.batch) }, () => telemetry(options.batch));
  const inFlight = store.appendConcurrency ?? 1;
  let next = 0;
  let started = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < batches.length) await store.append(batches[next++]!);
    }),
  );
  const appendRate = (batches.length * options.batch) / ((performance.now() - started) / 1000);

  const latencies: number[] = [];
  started = performance.now();
  for (let i = 0; i < options.queries; i++) {
    const t = performance.now();
    const page = await store.query({ from: [`car-${i % options.devices}`], order: 'desc', limit: 100 });
    latencies.push(performance.now() - t);
    if (page.items.length === 0) throw new Error(`${adapter}: a device query found nothing`);
  }
  const queryRate = options.queries / ((performance.now() - started) / 1000);
  latencies.sort((a, b) => a - b);

  let walked = 0;
  started = performance.now();
  let cursor: string | undefined;
  do {
    const page = await store.query({ order: 'asc', limit: 1000, cursor });
    walked += page.items.length;
    cursor = page.next ?? undefined;
  } while (cursor);
  const walkRate = walked / ((performance.now() - started) / 1000);

  let fed = 0;
  started = performance.now();
  let position: string | null = null;
  for (;;) {
    const batch = await store.readFeed(position, 500);
    if (batch.messages.length === 0) break;
    fed += batch.messages.length;
    position = batch.position;
  }
  const feedRate = fed / ((performance.now() - started) / 1000);
  if (walked !== batches.length * options.batch || fed !== walked) throw new Error(`${adapter}: appended ${batches.length * options.batch}, walked ${walked}, fed ${fed}`);
  return { adapter, messages: walked, appendRate, queryRate, queryP50: latencies[Math.floor(latencies.length / 2)]!, walkRate, feedRate };
}

const results: Result[] = [];

results.push(await measure('memory', new MemoryStore(), options.messages));

const dir = tempDir('nitrogen-bench-');
const sqlite = new SqliteStore(dir.path, { file: 'messages.db' });
await sqlite.start();
results.push(await measure('sqlite', sqlite, options.messages));
await sqlite.stop();
dir.remove();

const azurite = await startAzurite();
try {
  const azure = new AzureTablesStore(AzureStoreOptions.parse({ connectionString: azurite.connectionString, tablePrefix: 'bench' + randomBytes(4).toString('hex') }));
  await azure.start();
  results.push(await measure('azure-tables (Azurite emulator)', azure, options.azureMessages));
} finally {
  await azurite.stop();
}

if (findPostgresBin()) {
  const server = await startPostgres();
  try {
    const postgres = new PostgresStore(PostgresStoreOptions.parse({ url: server.url() }));
    await postgres.start();
    results.push(await measure(`postgres ${server.version} (local, unix socket)`, postgres, options.messages));
    await postgres.stop();
  } finally {
    await server.stop();
  }
} else {
  console.log('postgres: skipped (no PostgreSQL binaries; install the Debian package postgresql)');
}

if (process.env.MONGODB_URL) {
  const database = 'nitrogen_bench_' + randomBytes(4).toString('hex');
  const mongo = new MongoStore(MongoStoreOptions.parse({ url: process.env.MONGODB_URL, database }));
  await mongo.start();
  results.push(await measure('mongodb', mongo, options.messages));
  await mongo.stop();
  console.log(`(left database ${database} on MONGODB_URL; drop it when done)`);
} else {
  console.log('mongodb: skipped (set MONGODB_URL to include it)');
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
console.log('\n| adapter | messages | append msg/s | device query q/s | query p50 ms | page walk msg/s | feed read msg/s |');
console.log('|---|---:|---:|---:|---:|---:|---:|');
for (const r of results) {
  console.log(`| ${r.adapter} | ${fmt(r.messages)} | ${fmt(r.appendRate)} | ${fmt(r.queryRate)} | ${r.queryP50.toFixed(2)} | ${fmt(r.walkRate)} | ${fmt(r.feedRate)} |`);
}
