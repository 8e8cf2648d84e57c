import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { startTopology, type Topology } from '../deploy/local/topology.js';
import { LoadGenerator, carTelemetry, sleep } from './lib/load.js';
import { flags, fmt, printHeader } from './lib/machine.js';
import { cpuSeconds, loadAverage } from './lib/proc.js';
import { adminToken, registerDevices, spawnServer, stopProcess } from './lib/servers.js';
import { tempDir } from './lib/temp-dir.js';

/**
 * `npm run bench:cluster`: QoS 1 telemetry from `--connections` MQTT devices through the front
 * door of 1 and of 3 instances on PostgreSQL and Redis (the topology of `npm run cluster`,
 * deploy/local/topology.ts), and into the embedded default (SQLite, one process, no front door)
 * for comparison. For each: acknowledged msgs/s, and CPU per message of every server process
 * (from /proc: the instances, nginx and its workers, PostgreSQL and its backends; Redis from its
 * INFO), which says what a message costs whatever else the machine runs. On 2 cores three
 * instances cannot be faster than one: the figures are for docs/scaling.md's capacity model.
 */
const options = flags({ connections: 300, window: 8, seconds: 15, warmup: 5 });
printHeader('Cluster: 1 and 3 instances on PostgreSQL + Redis behind nginx, and the embedded default');
console.log(`load:    ${options.connections} MQTT connections, ${options.window} QoS 1 PUBLISHes in flight each, ~200-byte car telemetry; ${options.warmup} s warm-up, ${options.seconds} s measured`);

/** CPU seconds of a process and its children (nginx workers, PostgreSQL backends) now. */
function treeCpu(root: number): number {
  let total = cpuSeconds(root).total;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === root) total += cpuSeconds(Number(entry)).total;
    } catch {
      /* ended meanwhile */
    }
  }
  return total;
}

async function redisCpu(url: string): Promise<number> {
  const client = new Redis(url);
  const info = await client.info('cpu');
  client.disconnect();
  const field = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? 0);
  return field('used_cpu_sys') + field('used_cpu_user');
}

interface Row {
  label: string;
  rate: number;
  /** CPU µs per acknowledged message, by part. */
  perMessage: Record<string, number>;
  published?: number;
  received?: number;
}

async function metricSum(rests: string[], name: string): Promise<number> {
  let sum = 0;
  for (const rest of rests) {
    const text = await (await fetch(`${rest}/metrics`)).text();
    sum += Number(new RegExp(`^${name} ([\\d.e+]+)`, 'm').exec(text)?.[1] ?? 0);
  }
  return sum;
}

async function measure(label: string, mqttPort: number, rest: string, secret: string, parts: Record<string, () => Promise<number> | number>, origins: string[]): Promise<Row> {
  const token = await adminToken(`${rest}/api/v1`, secret);
  const devices = await registerDevices(`${rest}/api/v1`, token, options.connections, `car-${label.replace(/\W/g, '')}`);
  const load = await LoadGenerator.connect({
    host: '127.0.0.1',
    port: mqttPort,
    window: options.window,
    rate: 0,
    payloads: carTelemetry(64),
    localAddresses: [],
    connectConcurrency: 50,
    clients: devices.map((d) => ({ clientId: d.id, username: d.id, password: d.secret, topic: `devices/${d.id}/messages/telemetry` })),
  });
  load.start();
  await sleep(options.warmup * 1000);
  const before: Record<string, number> = {};
  for (const [name, read] of Object.entries(parts)) before[name] = await read();
  const published = await metricSum(origins, 'nitrogen_cluster_published_messages_total');
  const received = await metricSum(origins, 'nitrogen_cluster_received_messages_total');
  load.mark();
  await sleep(options.seconds * 1000);
  const report = await load.report();
  const perMessage: Record<string, number> = {};
  for (const [name, read] of Object.entries(parts)) perMessage[name] = (((await read()) - before[name]!) / report.acked) * 1e6;
  const row: Row = { label, rate: report.rate, perMessage };
  if (origins.length > 0) {
    row.published = ((await metricSum(origins, 'nitrogen_cluster_published_messages_total')) - published) / report.acked;
    row.received = ((await metricSum(origins, 'nitrogen_cluster_received_messages_total')) - received) / report.acked;
  }
  await load.stop(2000);
  if (report.errors.length) console.log(`  ${label}: errors: ${report.errors.slice(0, 3).join('; ')}`);
  return row;
}

async function embedded(): Promise<Row> {
  const dir = tempDir('nitrogen-bench-cluster-');
  const secret = 'bench-admin-secret-0123456789';
  const server = await spawnServer({ NITROGEN_ADMIN_SECRET: secret, NITROGEN_DATA_DIR: join(dir.path, 'data'), NITROGEN_LOG_LEVEL: 'warn' }, dir.path);
  try {
    const rest = server.rest.replace(/\/api\/v1$/, '');
    return await measure('embedded (SQLite), 1 process', Number(new URL(server.mqtt).port), rest, secret, { nitrogen: () => cpuSeconds(server.child.pid!).total }, []);
  } finally {
    await stopProcess(server.child);
    dir.remove();
  }
}

async function cluster(instances: number): Promise<Row> {
  const topology: Topology = await startTopology({ instances });
  try {
    const postmaster = Number(readFileSync(join(topology.postgres.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    return await measure(
      `PostgreSQL + Redis, ${instances} instance${instances > 1 ? 's' : ''} behind nginx`,
      Number(new URL(topology.frontMqtt).port),
      topology.frontRest,
      topology.adminSecret,
      {
        nitrogen: () => topology.instances.reduce((sum, x) => sum + cpuSeconds(x.child.pid!).total, 0),
        postgres: () => treeCpu(postmaster),
        redis: () => redisCpu(topology.redis.url),
        nginx: () => treeCpu(topology.nginxPid),
      },
      topology.instances.map((x) => x.rest),
    );
  } finally {
    await Promise.all(topology.instances.map((x) => x.kill('SIGTERM')));
    await topology.stop();
  }
}

const rows: Row[] = [];
rows.push(await embedded());
rows.push(await cluster(1));
rows.push(await cluster(3));

console.log(`\nload average at the end: ${loadAverage()}`);
console.log('\n| setup | msgs/s | Nitrogen µs CPU/msg | PostgreSQL µs/msg | Redis µs/msg | nginx µs/msg | all servers µs/msg | bus PUBLISHed / received per msg |');
console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
for (const row of rows) {
  const p = row.perMessage;
  const all = Object.values(p).reduce((a, b) => a + b, 0);
  const cell = (v: number | undefined) => (v === undefined ? '-' : v.toFixed(1));
  const bus = row.published === undefined ? '-' : `${row.published.toFixed(2)} / ${row.received!.toFixed(2)}`;
  console.log(`| ${row.label} | ${fmt(row.rate)} | ${cell(p.nitrogen)} | ${cell(p.postgres)} | ${cell(p.redis)} | ${cell(p.nginx)} | ${all.toFixed(1)} | ${bus} |`);
}
process.exit(0);
