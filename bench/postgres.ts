import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { PostgresStore } from '../adapters/postgres/index.js';
import { PostgresStoreOptions } from '../adapters/postgres/postgres-store.js';
import { bodyMessage, type Message } from '../core/message.js';
import { startPostgres } from './lib/postgres-server.js';
import { postgresCpu } from './lib/postgres.js';
import { carTelemetry } from './lib/load.js';
import { diskFacts, flags, fmt, numbers, printHeader } from './lib/machine.js';

/**
 * `npm run bench:postgres`: the PostgreSQL store alone on a throwaway local server (socket, no
 * network), driven like the group commit drives it: `--batch` messages from `--senders`
 * devices per append, as many appends in flight as `appendConcurrency`, for each value of
 * `--concurrency`; then two store instances on one schema (two servers sharing the database),
 * then queries and the feed. CPU per message is counted apart for this process (Nitrogen's
 * side: building rows, the driver) and for every PostgreSQL process.
 */
const options = flags({ senders: 1000, batch: 4000, seconds: 10, concurrency: '1,2,4,8', queries: 50 });
printHeader('PostgreSQL store: durable appends, two instances, queries, feed');
console.log(`disk:    ${diskFacts()}`);
console.log(`load:    ${options.senders} senders, ${fmt(options.batch)} messages per append (~230-byte car telemetry), ${options.seconds}s per point`);

const bodies = carTelemetry(64).map((json) => ({ json, body: JSON.parse(json) as unknown }));
let made = 0;
function batch(size: number): Message[] {
  const now = Date.now();
  return Array.from({ length: size }, () => {
    const i = made++;
    const { json, body } = bodies[i % bodies.length]!;
    return bodyMessage({ sender: `car-${i % options.senders}`, type: 'telemetry', now, bodyJson: json, body });
  });
}

const server = await startPostgres();
const admin = new pg.Pool({ connectionString: server.url(), max: 2 });
const setting = async (name: string) => (await admin.query<{ v: string }>('SELECT current_setting($1) AS v', [name])).rows[0]!.v;
console.log(
  `server:  PostgreSQL ${await setting('server_version')}, fsync ${await setting('fsync')}, synchronous_commit on (per session), wal_sync_method ${await setting('wal_sync_method')}, shared_buffers ${await setting('shared_buffers')}, unix socket`,
);

interface Point {
  label: string;
  rate: number;
  p50: number;
  p99: number;
  nodeUs: number;
  postgresUs: number;
  walBytes: number;
}

async function walLsn(): Promise<bigint> {
  const { rows } = await admin.query<{ lsn: string }>("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::text AS lsn");
  return BigInt(rows[0]!.lsn.split('.')[0]!);
}

/** Appends for `seconds` through `stores`, `inFlight` appends at once on each. */
async function measure(label: string, stores: PostgresStore[], inFlight: number): Promise<Point> {
  const latencies: number[] = [];
  let appended = 0;
  const wal = await walLsn();
  const cpu = process.cpuUsage();
  const pgCpu = postgresCpu(server);
  const started = performance.now();
  const end = started + options.seconds * 1000;
  await Promise.all(
    stores.flatMap((store) =>
      Array.from({ length: inFlight }, async () => {
        while (performance.now() < end) {
          const messages = batch(options.batch);
          const t = performance.now();
          await store.append(messages);
          latencies.push(performance.now() - t);
          appended += messages.length;
        }
      }),
    ),
  );
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  const pgUsed = postgresCpu(server) - pgCpu;
  latencies.sort((a, b) => a - b);
  return {
    label,
    rate: appended / seconds,
    p50: latencies[latencies.length >> 1]!,
    p99: latencies[Math.floor(latencies.length * 0.99)]!,
    nodeUs: (used.user + used.system) / appended,
    postgresUs: (pgUsed * 1e6) / appended,
    walBytes: Number((await walLsn()) - wal) / appended,
  };
}

const storeOn = (schema: string, appendConcurrency: number) => new PostgresStore(PostgresStoreOptions.parse({ url: server.url(), schema, appendConcurrency, poolSize: appendConcurrency + 2 }));
const points: Point[] = [];
let last: { store: PostgresStore; schema: string } | undefined;
try {
  for (const c of numbers(options.concurrency)) {
    const schema = `bench_c${c}`;
    const store = storeOn(schema, c);
    await store.start();
    points.push(await measure(`1 instance, ${c} in flight`, [store], c));
    if (last) {
      await last.store.stop();
      await admin.query(`DROP SCHEMA ${last.schema} CASCADE`);
    }
    last = { store, schema };
  }
  const pair = [storeOn('bench_pair', 4), storeOn('bench_pair', 4)];
  for (const s of pair) await s.start();
  points.push(await measure('2 instances, 4 in flight each', pair, 4));
  for (const s of pair) await s.stop();
  const size = (
    await admin.query<{ messages: string; feed: string; n: string }>(`SELECT pg_total_relation_size('bench_pair.messages') AS messages, pg_total_relation_size('bench_pair.feed') AS feed, (SELECT count(*) FROM bench_pair.messages) AS n`)
  ).rows[0]!;
  await admin.query('DROP SCHEMA bench_pair CASCADE');

  console.log('\n| appends | msgs/s | append p50 ms | p99 ms | Nitrogen CPU µs/msg | PostgreSQL CPU µs/msg | WAL bytes/msg |');
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  for (const p of points) console.log(`| ${p.label} | ${fmt(p.rate)} | ${p.p50.toFixed(1)} | ${p.p99.toFixed(1)} | ${p.nodeUs.toFixed(2)} | ${p.postgresUs.toFixed(2)} | ${fmt(p.walBytes)} |`);
  const n = Number(size.n);
  console.log(`(CPU is user + system time over the window; PostgreSQL's counts every server process: backends, WAL writer, checkpointer, autovacuum)`);
  console.log(`disk:    ${fmt(n)} messages: table and indexes ${(Number(size.messages) / n).toFixed(0)} bytes/msg, feed ${(Number(size.feed) / n).toFixed(0)} bytes/msg`);

  const { store } = last!;
  const time = async (label: string, run: () => Promise<unknown>) => {
    const t = performance.now();
    for (let i = 0; i < options.queries; i++) await run();
    console.log(`query:   ${label}: ${((performance.now() - t) / options.queries).toFixed(2)} ms`);
  };
  const sender = `car-${(made - 1) % options.senders}`;
  await time('newest 100, all senders (desc)', () => store.query({ order: 'desc', limit: 100 }));
  await time('oldest 100, all senders (asc)', () => store.query({ order: 'asc', limit: 100 }));
  await time('newest 100 of one sender (desc)', () => store.query({ order: 'desc', limit: 100, from: [sender] }));
  await time('newest 100 of 10 senders (desc)', () => store.query({ order: 'desc', limit: 100, from: Array.from({ length: 10 }, (_, i) => `car-${i}`) }));
  await time('newest 100 visible to an app that sees 1,000 senders (desc)', () => store.query({ order: 'desc', limit: 100, scope: { from: Array.from({ length: 1000 }, (_, i) => `car-${i}`), to: ['app-1'] } }));
  await time('feed, 1,000 from the start', () => store.readFeed(null, 1000));
  let fed = 0;
  let position: string | null = null;
  const t = performance.now();
  while (fed < 500_000) {
    const read: Awaited<ReturnType<PostgresStore['readFeed']>> = await store.readFeed(position, 500);
    if (read.messages.length === 0) break;
    fed += read.messages.length;
    position = read.position;
  }
  console.log(`feed:    ${fmt(fed / ((performance.now() - t) / 1000))} msgs/s reading ${fmt(fed)} from the start, 500 per read (what a sink does)`);
} finally {
  await last?.store.stop();
  await admin.end();
  await server.stop();
}
