import { fork } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import rhea from 'rhea';
import { tempDir } from './lib/temp-dir.js';
import { LoadGenerator, carTelemetry, sleep } from './lib/load.js';
import { flags, printHeader } from './lib/machine.js';
import { adminToken, registerDevices, spawnServer, stopProcess } from './lib/servers.js';

/**
 * `npm run bench:sink`: durable QoS 1 MQTT ingest into Nitrogen (SQLite) with the `amqp` sink
 * forwarding every message, against the same ingest without a sink, in one run. Downstream is
 * a rhea listener in its own process (bench/amqp-peer.ts, accepting everything) and, when
 * RABBITMQ_AMQP_URL is set, RabbitMQ with a rhea consumer draining the queue. Reports the
 * ingest rate, the delivered rate over the same window, the lag when the window ends and how
 * long the sink then takes to catch up.
 */
const options = flags({ connections: 1000, window: 10, warmup: 3, seconds: 10, batchSize: 2000, rate: 0, rounds: 1, profile: '' });
const SECRET = 'bench-admin-secret-0123456789';
printHeader('MQTT QoS 1 ingest with the amqp sink: ingest and delivered rates');
console.log(`load:    ${options.connections} connections, ${options.window} PUBLISHes in flight each, ${options.rate > 0 ? `paced to ${options.rate} msgs/s in total` : 'as fast as acknowledged'}, ~200-byte car telemetry JSON, ${options.warmup}s warm-up + ${options.seconds}s measured; sink delivery.batchSize ${options.batchSize}`);

const payloads = carTelemetry(64);

interface Downstream {
  label: string;
  sink?: { url: string; address: string; policy: string };
  received(): Promise<number>;
  stop(): Promise<void>;
}

async function rheaPeer(): Promise<Downstream> {
  const child = fork(fileURLToPath(new URL('./amqp-peer.js', import.meta.url)), { stdio: 'inherit' });
  const port = await new Promise<number>((resolve) => child.once('message', (m: { port: number }) => resolve(m.port)));
  return {
    label: 'amqp sink → rhea listener (own process)',
    sink: { url: `amqp://127.0.0.1:${port}`, address: 'telemetry', policy: 'default' },
    received: () => new Promise((resolve) => { child.once('message', (m: { received: number }) => resolve(m.received)); child.send({ stats: true }); }),
    stop: () => stopProcess(child),
  };
}

/** RabbitMQ, drained by a rhea consumer in this (otherwise idle) process. */
async function rabbitmq(url: string): Promise<Downstream> {
  const u = new URL(url);
  const queue = `nitrogen-bench-${process.pid}`;
  let received = 0;
  const container = rhea.create_container({ id: 'bench-consumer' });
  const connection = container.connect({ host: u.hostname, port: Number(u.port), username: decodeURIComponent(u.username), password: decodeURIComponent(u.password), reconnect: false });
  connection.open_receiver({ source: { address: `/queue/${queue}` }, credit_window: 2000 });
  container.on('message', () => { received++; });
  container.on('error', () => undefined); // transfers still arriving when the consumer closes
  await new Promise((resolve) => container.once('receiver_open', resolve));
  return {
    label: 'amqp sink → RabbitMQ (rhea consumer draining)',
    sink: { url, address: `/queue/${queue}`, policy: 'rabbitmq' },
    received: async () => received,
    stop: async () => { connection.close(); },
  };
}

async function metric(rest: string, name: string): Promise<number> {
  const text = await (await fetch(`${new URL(rest).origin}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{sink="out"}`));
  return line ? Number(line.split(' ').pop()) : 0;
}

interface Row {
  label: string; ingest: number; delivered: number; lag: number; drainSeconds: number; received: number; errors: string[];
  /** Server CPU (all threads) per message ingested in the window, and per message delivered while catching up with no load. */
  cpuPerIngested: number; cpuPerCaughtUp: number;
}

/** CPU seconds a process has used, all threads (utime + stime of /proc/<pid>/stat, in clock ticks of 1/100 s). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function measure(downstream?: Downstream): Promise<Row> {
  const dir = tempDir('nitrogen-bench-sink-');
  const config = join(dir.path, 'nitrogen.config.json');
  const sinks = downstream?.sink ? [{ use: 'amqp', name: 'out', options: downstream.sink, delivery: { batchSize: options.batchSize } }] : [];
  writeFileSync(config, JSON.stringify({ sinks }));
  // --profile <dir>: CPU profiles of the server with the sink (node --cpu-prof), for profile-summary.
  const nodeArgs = options.profile && downstream ? ['--cpu-prof', '--cpu-prof-dir', options.profile] : [];
  const server = await spawnServer({ NITROGEN_CONFIG: config, NITROGEN_DATA_DIR: join(dir.path, 'data'), NITROGEN_ADMIN_SECRET: SECRET, NITROGEN_LOG_LEVEL: 'warn' }, process.cwd(), nodeArgs);
  try {
    const token = await adminToken(server.rest, SECRET);
    const devices = await registerDevices(server.rest, token, options.connections);
    const url = new URL(server.mqtt);
    const clients = devices.map((d) => ({ clientId: d.id, username: d.id, password: d.secret, topic: `devices/${d.id}/messages/telemetry` }));
    const load = await LoadGenerator.connect({ host: url.hostname, port: Number(url.port), clients, window: options.window, rate: options.rate, payloads, localAddresses: ['127.0.0.1'], connectConcurrency: 100 });
    const run = load.run(options.warmup, options.seconds);
    await sleep(options.warmup * 1000);
    const pid = server.child.pid!;
    const cpuAtMark = cpuSeconds(pid);
    const deliveredAtMark = downstream ? await metric(server.rest, 'nitrogen_sink_delivered_total') : 0;
    const markedAt = performance.now();
    const result = await run;
    const cpuAtEnd = cpuSeconds(pid);
    const deliveredAtEnd = downstream ? await metric(server.rest, 'nitrogen_sink_delivered_total') : 0;
    const window = (performance.now() - markedAt) / 1000;
    const lag = downstream ? await metric(server.rest, 'nitrogen_sink_lag_messages') : 0;
    await load.stop();
    const stoppedAt = performance.now();
    // Catching up once the load stops: for two seconds the server does little but deliver the
    // backlog, so its CPU per message delivered then is the sink's cost. (Every /metrics scrape
    // counts the backlog in SQLite, so scrapes are few.)
    const cpuAtStop = cpuSeconds(pid);
    const deliveredAtStop = downstream ? await metric(server.rest, 'nitrogen_sink_delivered_total') : 0;
    await sleep(downstream ? 2000 : 0);
    const cpuCatchingUp = cpuSeconds(pid) - cpuAtStop;
    const caughtUp = downstream ? (await metric(server.rest, 'nitrogen_sink_delivered_total')) - deliveredAtStop : 0;
    let lagNow = lag;
    while (downstream && lagNow > 0 && performance.now() - stoppedAt < 120_000) {
      await sleep(500);
      lagNow = await metric(server.rest, 'nitrogen_sink_lag_messages');
    }
    const drainSeconds = (performance.now() - stoppedAt) / 1000;
    return {
      label: downstream?.label ?? 'no sink', ingest: result.rate, delivered: downstream ? (deliveredAtEnd - deliveredAtMark) / window : 0, lag, drainSeconds,
      received: downstream ? await downstream.received() : 0, errors: result.errors,
      cpuPerIngested: (cpuAtEnd - cpuAtMark) / result.acked, cpuPerCaughtUp: caughtUp > 0 ? cpuCatchingUp / caughtUp : NaN,
    };
  } finally {
    await stopProcess(server.child);
    dir.remove();
  }
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
// The machine is shared and noisy: each round measures without and with the sink back to back.
for (let round = 1; round <= options.rounds; round++) {
  const rows: Row[] = [await measure()];
  const peer = await rheaPeer();
  try {
    rows.push(await measure(peer));
  } finally {
    await peer.stop();
  }
  if (process.env.RABBITMQ_AMQP_URL) {
    const rabbit = await rabbitmq(process.env.RABBITMQ_AMQP_URL);
    try {
      rows.push(await measure(rabbit));
    } finally {
      await rabbit.stop();
    }
  } else if (round === 1) {
    console.log('RABBITMQ_AMQP_URL is not set: the RabbitMQ row is skipped');
  }
  console.log(`\nround ${round}`);
  console.log('| scenario | ingest msgs/s | delivered msgs/s | ingest / no sink | lag at end (msgs) | catch-up s | received downstream | server CPU µs / ingested msg | server CPU µs / msg caught up |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    const sink = r.label !== 'no sink';
    console.log(`| ${r.label} | ${fmt(r.ingest)} | ${sink ? fmt(r.delivered) : '–'} | ${(r.ingest / rows[0]!.ingest).toFixed(2)} | ${sink ? fmt(r.lag) : '–'} | ${sink ? r.drainSeconds.toFixed(1) : '–'} | ${sink ? fmt(r.received) : '–'} | ${(r.cpuPerIngested * 1e6).toFixed(1)} | ${sink ? (r.cpuPerCaughtUp * 1e6).toFixed(1) : '–'} |`);
  }
  for (const e of rows.flatMap((r) => r.errors).slice(0, 5)) console.log(`error: ${e}`);
}
