import { diskFacts, flags, fmt, ms, printHeader } from './lib/machine.js';
import { measureMqtt, pointProblems, storeLine, type Point } from './lib/point.js';
import { startAedes, startNitrogen } from './lib/targets.js';

/**
 * `npm run bench:latency`: acknowledgement latency (PUBLISH to PUBACK) at a steady rate below
 * the maximum. First the maximum: Nitrogen unpaced at `--connections`; then Nitrogen and bare
 * aedes paced to `--share` of that maximum, and to `--target` msgs/s (the latency
 * target), each in a fresh server. A paced run whose achieved rate falls short says so: its
 * latencies then describe a saturated server, not the requested rate.
 */
const options = flags({ connections: 1000, inflight: 10_000, share: 0.5, target: 30_000, warmup: 3, seconds: 10 });
printHeader('MQTT QoS 1 acknowledgement latency at a steady rate: Nitrogen (durable) vs bare aedes');
console.log(`disk:    ${diskFacts()}`);
console.log(`load:    ${fmt(options.connections)} connections, ~200-byte car telemetry, paced in 5 ms steps over all connections (random phases), ${options.warmup}s warm-up + ${options.seconds}s measured`);

// Paced runs keep the window of the maximum's run: far more than a server keeping up needs,
// while one falling behind is held to the same backlog instead of queueing without end.
const base = { warmup: options.warmup, seconds: options.seconds, sources: [] as string[], window: Math.max(1, Math.round(options.inflight / options.connections)) };
const paced = (rate: number) => ({ ...base, rate });

const maximum = await measureMqtt(await startNitrogen({ connections: options.connections }), { ...base, rate: 0 });
console.log(`maximum: Nitrogen ${fmt(maximum.load.rate)} msgs/s unpaced with ${fmt(options.inflight)} in flight (p99 ${ms(maximum.load.p99)} ms); ${storeLine(maximum)}`);

const rates = [Math.round(maximum.load.rate * options.share), options.target].filter((r, i, all) => r > 0 && all.indexOf(r) === i);
const points: Array<{ requested: number; label: string; point: Point }> = [];
for (const requested of rates) {
  const label = requested === options.target ? 'target' : `${options.share * 100}% of maximum`;
  points.push({ requested, label, point: await measureMqtt(await startNitrogen({ connections: options.connections }), paced(requested)) });
  points.push({ requested, label, point: await measureMqtt(await startAedes(options.connections), paced(requested)) });
}

console.log("\n| requested msgs/s | server | achieved msgs/s | ack p50 ms | ack p99 ms | ack max ms | server cores (main thread) | load gen cores | others' cores | load avg |");
console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|---|');
for (const { requested, label, point: p } of points) {
  const server = p.cpu.processes.server!;
  const short = p.load.rate < requested * 0.97 ? ' (fell short: saturated)' : '';
  console.log(
    `| ${fmt(requested)} (${label}) | ${p.target} | ${fmt(p.load.rate)}${short} | ${ms(p.load.p50)} | ${ms(p.load.p99)} | ${ms(p.load.max)} | ` +
      `${server.cores.toFixed(2)} (${server.mainCores.toFixed(2)}) | ${p.cpu.processes.load!.cores.toFixed(2)} | ${p.cpu.othersCores.toFixed(2)} | ${p.loadAverage} |`,
  );
}
for (const { point } of points) if (point.stored !== null) console.log(storeLine(point));
for (const { point } of [{ point: maximum }, ...points]) for (const problem of pointProblems(point)) console.log(`PROBLEM ${point.target}: ${problem}`);
