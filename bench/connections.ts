import { fork } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { IntervalReport, SimulatorOptions, SimulatorSummary } from '../samples/car-telemetry/simulator.js';
import { tempDir } from './lib/temp-dir.js';
import { LoadGenerator, sleep } from './lib/load.js';
import { MiB, flags, fmt, numbers, printHeader } from './lib/machine.js';
import { CpuMeter, loadAverage, rssBytes } from './lib/proc.js';
import { ADMIN_SECRET, startAedes, startNitrogen, type MqttTarget, type NitrogenTarget } from './lib/targets.js';

/**
 * `npm run bench:connections`: many idle connections (connected, pinging every 30 s).
 * (a) One server process, connections added in steps up to `--steps`' last (the process may
 *     hold 20,000 file descriptors here): resident memory after each step, its slope per
 *     connection, the connect rate, and whether every connection survives `--hold` seconds
 *     (longer than 1.5 × the 60 s keepalive, after which a server drops a silent client).
 *     Nitrogen, then bare aedes with the same steps.
 * (b) `--cars` spread over `--instances` Nitrogen processes, each with its own data directory,
 *     each fed by its own fleet simulator process (samples/car-telemetry, no car driving): the
 *     client-side split a load balancer would make. The sum of the servers' memory is the figure.
 */
const options = flags({ steps: '1000,5000,10000,19000', hold: 100, settle: 5, cars: 30_000, instances: 2, connectRate: 2000, sources: '', part: 'a,b' });
const steps = numbers(options.steps);
// By default the kernel chooses the source port at connect time: it may reuse a port towards
// another destination, so each server port has its own ~28,000, and it costs nothing. With
// `--sources 127.0.0.2,…` the clients bind those addresses first, as more than ~28,000
// connections to one server address would need; a bind searches the address's ports for one
// that is free, which turns slow (and becomes what is measured) once thousands of earlier
// connections from it sit in TIME_WAIT.
const sources = options.sources.split(',').filter(Boolean);
printHeader('Idle MQTT connections: memory per connection, connect rate, 30,000 cars');
console.log(`clients: connecting from ${sources.length ? sources.join(', ') : 'the address the kernel chooses'}; every connection pings every 30 s (keepalive 60 s)`);

interface Step {
  connections: number;
  rssMiB: number;
  connectRate: number;
}

/** Least-squares slope of memory over connections, in KiB per connection. */
function slopeKiB(points: Step[]): number {
  const n = points.length;
  const mx = points.reduce((s, p) => s + p.connections, 0) / n;
  const my = points.reduce((s, p) => s + p.rssMiB, 0) / n;
  const cov = points.reduce((s, p) => s + (p.connections - mx) * (p.rssMiB - my), 0);
  const varx = points.reduce((s, p) => s + (p.connections - mx) ** 2, 0);
  return (cov / varx) * 1024;
}

async function serverConnections(target: MqttTarget): Promise<string> {
  if (!('server' in target)) return '-';
  const text = await (await fetch(new URL('/metrics', (target as NitrogenTarget).server.rest))).text();
  return /^nitrogen_mqtt_connections (\d+)/m.exec(text)?.[1] ?? '?';
}

async function stepped(target: MqttTarget): Promise<void> {
  const loads: LoadGenerator[] = [];
  try {
    await sleep(options.settle * 1000);
    const points: Step[] = [{ connections: 0, rssMiB: rssBytes(target.pid) / MiB, connectRate: NaN }];
    let done = 0;
    for (const count of steps) {
      // A worker process per step: the new connections only, so earlier ones stay open and idle.
      const load = await LoadGenerator.connect({ host: target.host, port: target.port, clients: target.clients.slice(done, count), window: 0, rate: 0, payloads: [], localAddresses: sources, connectConcurrency: 100 });
      loads.push(load);
      load.start();
      const { connectSeconds } = await load.report();
      await sleep(options.settle * 1000);
      points.push({ connections: count, rssMiB: rssBytes(target.pid) / MiB, connectRate: (count - done) / connectSeconds });
      done = count;
    }
    const meter = new CpuMeter({ server: target.pid });
    meter.start();
    await sleep(options.hold * 1000);
    const idle = meter.stop();
    const reports = await Promise.all(loads.map((l) => l.report()));
    const open = reports.reduce((s, r) => s + r.connected, 0);
    const errors = reports.flatMap((r) => r.errors);
    const rssAfter = rssBytes(target.pid) / MiB;
    console.log(`\n## (a) ${target.name}: one process, idle connections added in steps (load average ${loadAverage()})`);
    console.log('| connections | server RSS MiB | connects/s (this step) |');
    console.log('|---:|---:|---:|');
    for (const p of points) console.log(`| ${fmt(p.connections)} | ${fmt(p.rssMiB)} | ${fmt(p.connectRate)} |`);
    // The first connections also warm the server up (code compiled, heap grown): the slope is
    // taken over the later steps, what one more connection costs.
    const slope = slopeKiB(points.slice(1));
    const first = points[1]!;
    console.log(
      `memory: the first ${fmt(first.connections)} connections add ${fmt(first.rssMiB - points[0]!.rssMiB)} MiB (warm-up included); ` +
        `then ${slope.toFixed(1)} KiB per connection (least squares over the steps from ${fmt(first.connections)}); extrapolated to 30,000 connections in one process: ${fmt(first.rssMiB + ((30_000 - first.connections) * slope) / 1024)} MiB`,
    );
    console.log(
      `after ${options.hold} s idle: ${fmt(open)} of ${fmt(done)} connections open at the client, ${await serverConnections(target)} by the server's nitrogen_mqtt_connections; ` +
        `RSS ${fmt(rssAfter)} MiB, ${(((rssAfter - points[0]!.rssMiB) * 1024) / done).toFixed(1)} KiB per connection over the server with none; ` +
        `server CPU while idle ${(idle.processes.server!.cores * 100).toFixed(1)}% of a core${errors.length ? `; errors: ${errors.slice(0, 5).join('; ')}` : ''}`,
    );
  } finally {
    await Promise.all(loads.map((l) => l.stop()));
    await target.stop();
  }
}

/** A fleet simulator process: resolves once started, with its latest report and a way to stop it. */
function startFleet(simulator: SimulatorOptions) {
  const child = fork(fileURLToPath(new URL('./lib/fleet-worker.js', import.meta.url)), [], { stdio: 'inherit' });
  const fleet = { child, latest: null as IntervalReport | null, fullAt: NaN, summary: null as Promise<SimulatorSummary> | null };
  fleet.summary = new Promise((resolve, reject) => {
    child.on('message', (msg: { op: string; report?: IntervalReport; summary?: SimulatorSummary; message?: string }) => {
      if (msg.op === 'report') {
        fleet.latest = msg.report!;
        if (Number.isNaN(fleet.fullAt) && msg.report!.connected === simulator.cars) fleet.fullAt = msg.report!.elapsedS;
      } else if (msg.op === 'summary') resolve(msg.summary!);
      else if (msg.op === 'error') reject(new Error(msg.message));
    });
  });
  child.send(simulator);
  return fleet;
}

async function spread(): Promise<void> {
  const perInstance = Math.ceil(options.cars / options.instances);
  const dir = tempDir('nitrogen-fleet-');
  const servers: NitrogenTarget[] = [];
  const fleets: ReturnType<typeof startFleet>[] = [];
  try {
    for (let i = 0; i < options.instances; i++) servers.push(await startNitrogen({ connections: 0 }));
    for (const [i, server] of servers.entries()) {
      fleets.push(
        startFleet({
          rest: server.server.rest,
          adminSecret: ADMIN_SECRET,
          cars: perInstance,
          prefix: `car-${String.fromCharCode(97 + i)}`,
          driving: 0,
          credentials: join(dir.path, `fleet-${i}.json`),
          connectRate: options.connectRate,
          sources,
          reportEvery: 1,
        }),
      );
    }
    const deadline = performance.now() + 600_000;
    while (fleets.some((f) => Number.isNaN(f.fullAt)) && performance.now() < deadline) await sleep(500);
    await sleep(options.settle * 1000);
    const rssConnected = servers.map((s) => rssBytes(s.pid) / MiB);
    const meter = new CpuMeter(Object.fromEntries(servers.map((s, i) => [`server ${i}`, s.pid])));
    meter.start();
    await sleep(options.hold * 1000);
    const idle = meter.stop();
    const rssHeld = servers.map((s) => rssBytes(s.pid) / MiB);
    const counted = await Promise.all(servers.map((s) => serverConnections(s)));
    for (const f of fleets) f.child.send({ op: 'stop' });
    const summaries = await Promise.all(fleets.map((f) => f.summary!));
    const sum = (xs: number[]) => xs.reduce((s, x) => s + x, 0);
    console.log(`\n## (b) ${fmt(options.cars)} cars over ${options.instances} Nitrogen processes, one fleet simulator process each (load average ${loadAverage()})`);
    console.log('| instance | cars | all connected after s | server RSS MiB, all connected | after the hold | server connections after the hold | server CPU idle | simulator errors | simulator RSS MiB |');
    console.log('|---|---:|---:|---:|---:|---:|---:|---|---:|');
    servers.forEach((_, i) => {
      const s = summaries[i]!;
      const errors =
        Object.entries(s.errors)
          .map(([k, n]) => `${n} × ${k}`)
          .join('; ') || 'none';
      console.log(
        `| ${i} | ${fmt(perInstance)} | ${fleets[i]!.fullAt.toFixed(0)} | ${fmt(rssConnected[i]!)} | ${fmt(rssHeld[i]!)} | ${counted[i]} | ${(idle.processes[`server ${i}`]!.cores * 100).toFixed(1)}% | ${errors} | ${fmt(s.cost.rssMiB)} |`,
      );
    });
    const seconds = Math.max(...fleets.map((f) => f.fullAt));
    console.log(`sum of server RSS: ${fmt(sum(rssConnected))} MiB with every car connected, ${fmt(sum(rssHeld))} MiB after ${options.hold} s idle (target: at most 1,024 MiB)`);
    console.log(`connect rate: ${fmt((perInstance * options.instances) / seconds)} connections/s over all instances (simulators capped at ${fmt(options.connectRate)}/s each; 1 s report resolution)`);
  } finally {
    for (const f of fleets) if (f.child.exitCode === null) f.child.kill();
    for (const s of servers) await s.stop();
    dir.remove();
  }
}

if (options.part.includes('a')) {
  await stepped(await startNitrogen({ connections: steps.at(-1)! }));
  await stepped(await startAedes(steps.at(-1)!));
}
if (options.part.includes('b')) await spread();
