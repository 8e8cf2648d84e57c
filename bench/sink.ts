import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from './lib/temp-dir.js';
import { LoadGenerator, carTelemetry, sleep } from './lib/load.js';
import { flags, fmt, printHeader } from './lib/machine.js';
import { loadAverage } from './lib/proc.js';
import { adminToken, registerDevices, spawnServer, stopProcess } from './lib/servers.js';

/**
 * `npm run bench:sink`: durable QoS 1 MQTT ingest into Nitrogen (SQLite) with a sink forwarding
 * every message, beside the same ingest without a sink. Downstream is a peer in its own process
 * (bench/sink-peer.ts): a rhea listener for the `amqp` sink, the test Event Hubs peer for the
 * `eventhubs` sink. Each scenario is `<sink>@<rate>` (`none`, `amqp`, `eventhubs`; rate in
 * msgs/s over all connections, absent: as fast as acknowledged). It reports the ingest rate,
 * the rate the peer received during the same window, how long after the load stopped the peer
 * had every acknowledged message, end-to-end latency at the peer (p50/p99, from the envelope's
 * `ts` to the peer accepting), and server CPU from /proc: per ingested message, per delivered
 * message beyond the no-sink scenario at the same rate, and of the main thread alone.
 */
const options = flags({
  connections: 1000,
  window: 10,
  warmup: 3,
  seconds: 10,
  batchSize: 2000,
  scenarios: 'none@30000,amqp@30000,eventhubs@30000,none,amqp',
  /** Extra `delivery` options of the sink, as JSON (e.g. '{"inFlight":8}'); a build before them takes none. */
  delivery: '{}',
  /** Another build's CLI (e.g. /work/main/dist/bin/nitrogen.js) to measure it with the same bench. */
  cli: '',
  profile: '',
});
const SECRET = 'bench-admin-secret-0123456789';
printHeader('MQTT QoS 1 ingest with a sink: ingest and delivered rates, drain, latency, CPU');
console.log(
  `load:    ${options.connections} connections, ${options.window} PUBLISHes in flight each, ~200-byte car telemetry JSON, ${options.warmup}s warm-up + ${options.seconds}s measured; sink delivery ${JSON.stringify({ batchSize: options.batchSize, ...JSON.parse(options.delivery) })}${options.cli ? `; server ${options.cli}` : ''}`,
);

const payloads = carTelemetry(64);

interface Peer {
  child: ChildProcess;
  sink: { use: string; options: object };
  stats(): Promise<{ received: number; distinct: number; latenciesMs: number[] }>;
  mark(): void;
}

async function startPeer(kind: 'amqp' | 'eventhubs', port = 0): Promise<Peer> {
  const child = fork(fileURLToPath(new URL('./sink-peer.js', import.meta.url)), [kind, String(port)], { stdio: 'inherit' });
  const ready = await new Promise<{ port: number; connectionString?: string }>((resolve) => child.once('message', resolve as never));
  const sink = kind === 'amqp' ? { use: 'amqp', options: { url: `amqp://127.0.0.1:${ready.port}`, address: 'telemetry' } } : { use: 'eventhubs', options: { connectionString: ready.connectionString } };
  return {
    child,
    sink,
    stats: () =>
      new Promise((resolve) => {
        child.once('message', resolve as never);
        child.send({ op: 'stats' });
      }),
    mark: () => child.send({ op: 'mark' }),
  };
}

async function metric(rest: string, name: string): Promise<number> {
  const text = await (await fetch(`${new URL(rest).origin}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{sink="out"}`));
  return line ? Number(line.split(' ').pop()) : 0;
}

/** CPU seconds (utime + stime, clock ticks of 1/100 s) of a process, all threads, or of one thread. */
function cpuSeconds(pid: number, tid?: number): number {
  const path = tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`;
  const fields = readFileSync(path, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function quantile(sorted: number[], q: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

interface Row {
  scenario: string;
  sink: string;
  rate: number;
  ingest: number;
  acked: number;
  received: number;
  deliveredRate: number;
  lagAtEnd: number;
  drainedIn: number;
  p50: number;
  p99: number;
  ackP50: number;
  ackP99: number;
  cpuPerIngested: number;
  mainCpuPerIngested: number;
  cpuPerCaughtUp: number;
  mainCpuPerCaughtUp?: number;
  peerCpuPerReceived?: number;
  errors: string[];
}

/** A port free now, for a peer that starts later. */
async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * `<sink>@backlog`: the sink's peer is down while devices send as fast as acknowledged; then the
 * load stops and the peer starts. The server then does nothing but deliver the backlog: its CPU
 * per message delivered is the sink's whole cost (main thread and delivery thread), and the
 * time it takes gives the delivery rate with no ingest beside it.
 */
async function backlog(sinkKind: 'amqp' | 'eventhubs'): Promise<Row> {
  const port = await freePort();
  // The connection string names the peer's port; the peer's key and hub are fixed (bench/lib/eventhubs-peer.ts).
  const probe = await startPeer(sinkKind, 0);
  const sinkOptions = JSON.parse(JSON.stringify(probe.sink.options).replace(/127\.0\.0\.1:\d+/, `127.0.0.1:${port}`));
  await stopProcess(probe.child);
  const dir = tempDir('nitrogen-bench-sink-');
  const config = join(dir.path, 'nitrogen.config.json');
  const delivery = { batchSize: options.batchSize, retryMaxMs: 200, ...JSON.parse(options.delivery) };
  writeFileSync(config, JSON.stringify({ sinks: [{ use: sinkKind, options: sinkOptions, name: 'out', filter: { type: ['telemetry'] }, delivery }] }));
  const nodeArgs = options.profile ? ['--cpu-prof', '--cpu-prof-dir', options.profile] : [];
  const server = await spawnServer({ NITROGEN_CONFIG: config, NITROGEN_DATA_DIR: join(dir.path, 'data'), NITROGEN_ADMIN_SECRET: SECRET, NITROGEN_LOG_LEVEL: 'error' }, process.cwd(), nodeArgs, options.cli || undefined);
  let peer: Peer | undefined;
  try {
    const token = await adminToken(server.rest, SECRET);
    const devices = await registerDevices(server.rest, token, options.connections);
    const url = new URL(server.mqtt);
    const clients = devices.map((d) => ({ clientId: d.id, username: d.id, password: d.secret, topic: `devices/${d.id}/messages/telemetry` }));
    const load = await LoadGenerator.connect({ host: url.hostname, port: Number(url.port), clients, window: options.window, rate: 0, payloads, localAddresses: ['127.0.0.1'], connectConcurrency: 100 });
    const result = await load.run(options.warmup, options.seconds);
    const totals = await load.stop();
    // Compaction of what was ingested (after compactDelayMs, 2 s) is ingest's cost: let it finish,
    // then take the server's idle CPU (1,000 connections, timers) as the floor to subtract.
    await sleep(4000);
    const pid = server.child.pid!;
    const idleFrom = [cpuSeconds(pid), cpuSeconds(pid, pid), performance.now()] as const;
    await sleep(2000);
    const idleSeconds = (performance.now() - idleFrom[2]) / 1000;
    const idle = { all: (cpuSeconds(pid) - idleFrom[0]) / idleSeconds, main: (cpuSeconds(pid, pid) - idleFrom[1]) / idleSeconds };
    const cpuAtStart = cpuSeconds(pid);
    const mainAtStart = cpuSeconds(pid, pid);
    const startedAt = performance.now();
    peer = await startPeer(sinkKind, port);
    let received = 0;
    while (received < totals.ackedTotal && performance.now() - startedAt < 300_000) {
      await sleep(100);
      received = (await peer.stats()).received;
    }
    const seconds = (performance.now() - startedAt) / 1000;
    const cpu = cpuSeconds(pid) - cpuAtStart - idle.all * seconds;
    const main = cpuSeconds(pid, pid) - mainAtStart - idle.main * seconds;
    return {
      scenario: `${sinkKind}@backlog`,
      sink: sinkKind,
      rate: -1,
      ingest: result.rate,
      acked: totals.ackedTotal,
      received,
      deliveredRate: received / seconds,
      lagAtEnd: totals.ackedTotal,
      drainedIn: seconds,
      p50: NaN,
      p99: NaN,
      ackP50: result.p50,
      ackP99: result.p99,
      cpuPerIngested: NaN,
      mainCpuPerIngested: NaN,
      cpuPerCaughtUp: cpu / received,
      mainCpuPerCaughtUp: main / received,
      errors: result.errors,
    };
  } finally {
    await stopProcess(server.child);
    if (peer) await stopProcess(peer.child);
    dir.remove();
  }
}

/**
 * `amqp@<rate>+kill`: the durability check at rate. Devices send at the paced rate; halfway the
 * server is SIGKILLed, started again on the same data directory, and devices send for the other
 * half. Every acknowledged message must reach the peer: it counts distinct message ids, which
 * must reach the PUBACKs of both halves (messages committed but not acknowledged before the kill
 * may arrive too), and the duplicates (at-least-once) are reported.
 */
async function killScenario(rate: number): Promise<void> {
  const peer = await startPeer('amqp');
  const dir = tempDir('nitrogen-bench-sink-kill-');
  const config = join(dir.path, 'nitrogen.config.json');
  const delivery = { batchSize: options.batchSize, retryMaxMs: 500, ...JSON.parse(options.delivery) };
  writeFileSync(config, JSON.stringify({ sinks: [{ ...peer.sink, name: 'out', filter: { type: ['telemetry'] }, delivery }] }));
  const env = { NITROGEN_CONFIG: config, NITROGEN_DATA_DIR: join(dir.path, 'data'), NITROGEN_ADMIN_SECRET: SECRET, NITROGEN_LOG_LEVEL: 'error' };
  const half = options.seconds / 2;
  let acked = 0;
  let devices: Array<{ id: string; secret: string }> = [];
  try {
    for (const step of ['kill', 'stop'] as const) {
      const server = await spawnServer(env, process.cwd(), [], options.cli || undefined);
      try {
        if (devices.length === 0) devices = await registerDevices(server.rest, await adminToken(server.rest, SECRET), options.connections);
        const url = new URL(server.mqtt);
        const clients = devices.map((d) => ({ clientId: d.id, username: d.id, password: d.secret, topic: `devices/${d.id}/messages/telemetry` }));
        const load = await LoadGenerator.connect({ host: url.hostname, port: Number(url.port), clients, window: options.window, rate, payloads, localAddresses: ['127.0.0.1'], connectConcurrency: 100 });
        const result = await load.run(step === 'kill' ? options.warmup : 0, half);
        if (step === 'kill') server.child.kill('SIGKILL');
        acked += (await load.stop()).ackedTotal;
        console.log(`${step === 'kill' ? 'before the SIGKILL' : 'after the restart'}: ingest ${fmt(result.rate)}/s, ${fmt(acked)} acknowledged so far, peer has ${fmt((await peer.stats()).distinct)} distinct`);
        if (step === 'stop') {
          const stoppedAt = performance.now();
          let stats = await peer.stats();
          while (stats.distinct < acked && performance.now() - stoppedAt < 120_000) {
            await sleep(100);
            stats = await peer.stats();
          }
          const waited = (performance.now() - stoppedAt) / 1000;
          console.log(`\n| scenario | acknowledged (both halves) | distinct at the peer | duplicates | every acknowledged message arrived | within |`);
          console.log('|---|---:|---:|---:|---|---:|');
          console.log(`| amqp@${rate}+kill | ${fmt(acked)} | ${fmt(stats.distinct)} | ${fmt(stats.received - stats.distinct)} | ${stats.distinct >= acked ? 'yes' : 'NO'} | ${waited.toFixed(1)} s after the load stopped |`);
        }
      } finally {
        await stopProcess(server.child);
      }
    }
  } finally {
    await stopProcess(peer.child);
    dir.remove();
  }
}

async function measure(scenario: string): Promise<Row | undefined> {
  const [sinkKind, rateText] = scenario.split('@') as [string, string | undefined];
  if (rateText === 'backlog') return backlog(sinkKind as 'amqp' | 'eventhubs');
  if (rateText?.endsWith('+kill')) return void (await killScenario(Number(rateText.slice(0, -'+kill'.length))));
  const rate = Number(rateText ?? 0);
  const peer = sinkKind === 'none' ? undefined : await startPeer(sinkKind as 'amqp' | 'eventhubs');
  const dir = tempDir('nitrogen-bench-sink-');
  const config = join(dir.path, 'nitrogen.config.json');
  // Telemetry only: the peer's count then compares with the PUBACKs (presence events are left out).
  const delivery = { batchSize: options.batchSize, ...JSON.parse(options.delivery) };
  const sinks = peer ? [{ ...peer.sink, name: 'out', filter: { type: ['telemetry'] }, delivery }] : [];
  writeFileSync(config, JSON.stringify({ sinks }));
  const nodeArgs = options.profile && peer ? ['--cpu-prof', '--cpu-prof-dir', options.profile] : [];
  const server = await spawnServer({ NITROGEN_CONFIG: config, NITROGEN_DATA_DIR: join(dir.path, 'data'), NITROGEN_ADMIN_SECRET: SECRET, NITROGEN_LOG_LEVEL: 'warn' }, process.cwd(), nodeArgs, options.cli || undefined);
  try {
    const token = await adminToken(server.rest, SECRET);
    const devices = await registerDevices(server.rest, token, options.connections);
    const url = new URL(server.mqtt);
    const clients = devices.map((d) => ({ clientId: d.id, username: d.id, password: d.secret, topic: `devices/${d.id}/messages/telemetry` }));
    const load = await LoadGenerator.connect({ host: url.hostname, port: Number(url.port), clients, window: options.window, rate, payloads, localAddresses: ['127.0.0.1'], connectConcurrency: 100 });
    const pid = server.child.pid!;
    load.start();
    await sleep(options.warmup * 1000);
    load.mark();
    peer?.mark();
    const cpuAtMark = cpuSeconds(pid);
    const mainAtMark = cpuSeconds(pid, pid);
    const receivedAtMark = peer ? (await peer.stats()).received : 0;
    const peerCpuAtMark = peer ? cpuSeconds(peer.child.pid!) : 0;
    const markedAt = performance.now();
    await sleep(options.seconds * 1000);
    const result = await load.report();
    const cpuAtEnd = cpuSeconds(pid);
    const mainAtEnd = cpuSeconds(pid, pid);
    const window = (performance.now() - markedAt) / 1000;
    const atEnd = peer ? await peer.stats() : { received: 0, latenciesMs: [] };
    const peerCpu = peer ? cpuSeconds(peer.child.pid!) - peerCpuAtMark : 0;
    const lagAtEnd = peer ? await metric(server.rest, 'nitrogen_sink_lag_messages') : 0;
    const totals = await load.stop();
    const stoppedAt = performance.now();
    // A backlog left at the end is delivered with no load: CPU per message then is the sink's.
    const cpuAtStop = cpuSeconds(pid);
    const receivedAtStop = peer ? (await peer.stats()).received : 0;
    let cpuPerCaughtUp = NaN;
    if (peer && totals.ackedTotal - receivedAtStop > 20_000) {
      await sleep(2000);
      const caughtUp = (await peer.stats()).received - receivedAtStop;
      if (caughtUp > 0) cpuPerCaughtUp = (cpuSeconds(pid) - cpuAtStop) / caughtUp;
    }
    let received = receivedAtStop;
    while (peer && received < totals.ackedTotal && performance.now() - stoppedAt < 120_000) {
      await sleep(100);
      received = (await peer.stats()).received;
    }
    const drainedIn = (performance.now() - stoppedAt) / 1000;
    const latencies = atEnd.latenciesMs.sort((a, b) => a - b);
    return {
      scenario,
      sink: sinkKind,
      rate,
      ingest: result.rate,
      acked: totals.ackedTotal,
      received,
      deliveredRate: peer ? (atEnd.received - receivedAtMark) / window : 0,
      lagAtEnd,
      drainedIn,
      p50: quantile(latencies, 0.5),
      p99: quantile(latencies, 0.99),
      ackP50: result.p50,
      ackP99: result.p99,
      cpuPerIngested: (cpuAtEnd - cpuAtMark) / result.acked,
      mainCpuPerIngested: (mainAtEnd - mainAtMark) / result.acked,
      cpuPerCaughtUp,
      errors: result.errors,
      peerCpuPerReceived: peer && atEnd.received > receivedAtMark ? peerCpu / (atEnd.received - receivedAtMark) : NaN,
    };
  } finally {
    await stopProcess(server.child);
    if (peer) await stopProcess(peer.child);
    dir.remove();
  }
}

const rows: Row[] = [];
for (const scenario of options.scenarios.split(',')) {
  const row = await measure(scenario);
  if (!row) continue;
  rows.push(row);
  console.log(`${scenario}: ingest ${fmt(row.ingest)}/s, delivered ${fmt(row.deliveredRate)}/s, drained ${row.drainedIn.toFixed(1)} s after, p99 ${fmt(row.p99)} ms, load average ${loadAverage()}`);
}
const us = (seconds: number) => (Number.isFinite(seconds) ? (seconds * 1e6).toFixed(1) : '–');
console.log(
  '\n| scenario | ingest msgs/s | delivered msgs/s (peer, same window) | delivered / ingest | lag at end | all acked received after stop | received / acked | PUBACK p50 / p99 ms | e2e p50 ms | e2e p99 ms | server CPU µs / ingested | main thread CPU µs / ingested | sink CPU µs / delivered (vs none at same rate) | server CPU µs / msg caught up | peer CPU µs / msg received |',
);
console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const r of rows) {
  const sink = r.sink !== 'none';
  const base = rows.find((b) => b.sink === 'none' && b.rate === r.rate);
  // CPU beyond what the same ingest costs without a sink, per message delivered in the window.
  const perDelivered = sink && base && r.deliveredRate > 0 ? ((r.cpuPerIngested - base.cpuPerIngested) * r.ingest) / r.deliveredRate : NaN;
  const dash = (text: string) => (sink ? text : '–');
  const live = (text: string) => (sink && r.rate >= 0 ? text : '–');
  console.log(
    `| ${r.scenario} | ${fmt(r.ingest)} | ${dash(fmt(r.deliveredRate))} | ${live((r.deliveredRate / r.ingest).toFixed(2))} | ${dash(fmt(r.lagAtEnd))} | ${dash(r.received >= r.acked ? `${r.drainedIn.toFixed(1)} s` : `no (${fmt(r.received)} of ${fmt(r.acked)} after ${r.drainedIn.toFixed(0)} s)`)} | ${dash(`${fmt(r.received)} / ${fmt(r.acked)}`)} | ${fmt(r.ackP50)} / ${fmt(r.ackP99)} | ${dash(fmt(r.p50))} | ${dash(fmt(r.p99))} | ${us(r.cpuPerIngested)} | ${r.rate < 0 ? `${us(r.mainCpuPerCaughtUp!)} per msg caught up` : us(r.mainCpuPerIngested)} | ${us(perDelivered)} | ${us(r.cpuPerCaughtUp)} | ${us(r.peerCpuPerReceived ?? NaN)} |`,
  );
}
if (rows.some((r) => r.rate < 0))
  console.log(
    "backlog rows: ingest with the peer down, then the peer starts; delivered = the drain rate with no ingest; lag = the backlog; CPU per message caught up = the sink's whole cost (all threads, less the idle server's CPU over as long; main thread alone in its column)",
  );
for (const e of rows.flatMap((r) => r.errors).slice(0, 5)) console.log(`error: ${e}`);
