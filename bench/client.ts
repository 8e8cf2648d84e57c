import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { IntervalReport, SimulatorOptions, SimulatorSummary } from '../samples/car-telemetry/simulator.js';
import { flags, fmt, printHeader } from './lib/machine.js';
import { exited } from './lib/servers.js';
import { ADMIN_SECRET, startNitrogen } from './lib/targets.js';
import { tempDir } from './lib/temp-dir.js';

/**
 * `npm run bench:client`: what the client library costs a device, measured on the car-telemetry
 * sample. Two fleet simulators run side by side against one Nitrogen server, with the same
 * cars, schedule and load: one whose cars are devices of the client library (`--link library`,
 * the sample's default), one whose cars speak MQTT over raw sockets (`--link raw`, the
 * benchmarks' load generator). Each runs in its own process; the figure is CPU time (user +
 * system, all threads) per acknowledged message of each simulator over the same windows, so
 * both see the same machine at the same moment. Both numbers come from the simulator's own
 * reports (`cpuMicros`, `delivered`), read at the same instant in its process, so a window's
 * edges cannot count messages without their CPU or the reverse.
 */
const options = flags({ cars: 1000, driving: 0.6, rate: 2, rounds: 5, seconds: 15, settle: 5 });
const GOAL = 1.3;
type Kind = 'library' | 'raw';

interface FleetProcess {
  child: ChildProcess;
  latest: IntervalReport | null;
  summary: Promise<SimulatorSummary>;
}

function startFleet(simulator: SimulatorOptions): FleetProcess {
  const child = fork(fileURLToPath(new URL('./lib/fleet-worker.js', import.meta.url)), [], { stdio: 'inherit' });
  const fleet: FleetProcess = { child, latest: null, summary: null! };
  fleet.summary = new Promise((resolve, reject) => {
    child.on('message', (msg: { op: string; report?: IntervalReport; summary?: SimulatorSummary; message?: string }) => {
      if (msg.op === 'report') fleet.latest = msg.report!;
      else if (msg.op === 'summary') resolve(msg.summary!);
      else if (msg.op === 'error') reject(new Error(msg.message));
    });
  });
  child.send(simulator);
  return fleet;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

printHeader('Client library: the car-telemetry sample on @nitrogen/client vs on raw sockets, side by side');
const perFleet = options.cars * options.driving * options.rate;
console.log(
  `load:    two fleets of ${fmt(options.cars)} cars, ${options.driving * 100}% driving at ${options.rate} msg/s (${fmt(perFleet)} msg/s each), QoS 1, one Nitrogen server (embedded store, durable); ${options.rounds} windows of ${options.seconds} s after ${options.settle} s of settling`,
);

const target = await startNitrogen({ connections: 0 });
const dir = tempDir('nitrogen-bench-client-');
const fleets: Record<'library' | 'raw', FleetProcess> = {
  library: startFleet({
    link: 'library',
    rest: target.server.rest,
    adminSecret: ADMIN_SECRET,
    cars: options.cars,
    driving: options.driving,
    rate: options.rate,
    prefix: 'lib',
    credentials: join(dir.path, 'library.json'),
    reportEvery: 1,
    tripMinutes: 60,
  }),
  raw: startFleet({
    link: 'raw',
    rest: target.server.rest,
    adminSecret: ADMIN_SECRET,
    cars: options.cars,
    driving: options.driving,
    rate: options.rate,
    prefix: 'raw',
    credentials: join(dir.path, 'raw.json'),
    reportEvery: 1,
    tripMinutes: 60,
  }),
};
try {
  const driving = Math.round(options.cars * options.driving);
  const deadline = performance.now() + 300_000;
  while (Object.values(fleets).some((f) => (f.latest?.driving ?? 0) < driving)) {
    if (performance.now() > deadline) throw new Error('the fleets did not all connect within 300 s');
    await sleep(200);
  }
  await sleep(options.settle * 1000);
  console.log('\n| window | library msgs/s | raw msgs/s | library CPU µs/msg | raw CPU µs/msg | library / raw | library, raw: share of a core |');
  console.log('|---:|---:|---:|---:|---:|---:|---:|');
  const ratios: number[] = [];
  for (let round = 1; round <= options.rounds; round++) {
    const before = { library: fleets.library.latest!, raw: fleets.raw.latest! };
    await sleep(options.seconds * 1000);
    const after = { library: fleets.library.latest!, raw: fleets.raw.latest! };
    const messages = (k: Kind) => after[k].delivered - before[k].delivered;
    const seconds = (k: Kind) => after[k].elapsedS - before[k].elapsedS;
    const us = (k: Kind) => (after[k].cpuMicros - before[k].cpuMicros) / messages(k);
    const share = (k: Kind) => `${((after[k].cpuMicros - before[k].cpuMicros) / 1e4 / seconds(k)).toFixed(1)}%`;
    ratios.push(us('library') / us('raw'));
    console.log(
      `| ${round} | ${fmt(messages('library') / seconds('library'))} | ${fmt(messages('raw') / seconds('raw'))} | ${us('library').toFixed(1)} | ${us('raw').toFixed(1)} | ${(us('library') / us('raw')).toFixed(2)} | ${share('library')}, ${share('raw')} |`,
    );
  }
  const result = median(ratios);
  console.log(`\nmedian library / raw CPU per message: ${result.toFixed(2)}x (goal: at most ${GOAL}x) — ${result <= GOAL ? 'met' : 'NOT met'}`);
  for (const f of Object.values(fleets)) f.child.send({ op: 'stop' });
  const [library, raw] = await Promise.all([fleets.library.summary, fleets.raw.summary]);
  await Promise.all(Object.values(fleets).map((f) => exited(f.child)));
  for (const [name, s] of [
    ['library', library],
    ['raw', raw],
  ] as const) {
    const errors =
      Object.entries(s.errors)
        .map(([k, n]) => `${n} × ${k}`)
        .join('; ') || 'none';
    console.log(
      `${name.padEnd(8)} ${fmt(s.acked)} acknowledged of ${fmt(s.sent)} sent, ack p50 ${s.latency?.p50.toFixed(1)} ms p99 ${s.latency?.p99.toFixed(1)} ms, RSS ${fmt(s.cost.rssMiB)} MiB (+${fmt(s.cost.rssGrowthMiB)} for the cars), errors: ${errors}`,
    );
  }
} finally {
  for (const f of Object.values(fleets)) if (f.child.exitCode === null) f.child.kill();
  await target.stop();
  dir.remove();
}
