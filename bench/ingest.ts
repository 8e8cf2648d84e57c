import { mkdirSync, rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { allocationSamplerArgs, summarizeAllocations } from './lib/allocations.js';
import { diskFacts, flags, fmt, numbers, printHeader } from './lib/machine.js';
import { POINT_HEADER, POINT_RULE, measureMqtt, pointProblems, pointRow, storeLine, type Point } from './lib/point.js';
import { postgresCpu, startPostgresBench } from './lib/postgres.js';
import { summarizeProfiles } from './lib/profile.js';
import { startAedes, startNitrogen, type BenchTls } from './lib/targets.js';
import { BenchCa } from './lib/certificates.js';
import { tempDir } from './lib/temp-dir.js';

/**
 * `npm run bench:ingest`: durable QoS 1 MQTT ingest into Nitrogen (embedded default store)
 * against bare aedes in the same run, with the same load generator, connections and payloads,
 * at several connection counts. The total in flight stays the same at every count (each
 * connection gets its share), so the figures show what more connections cost, not a deeper queue.
 */
const options = flags({ connections: '100,1000,10000', inflight: 10_000, warmup: 3, seconds: 10, rounds: 1, profile: '', allocations: '', sources: '', store: 'sqlite', tls: false });
// --tls: each point also runs over TLS (both servers with the same certificate), so the run shows the plain ratio and the TLS ratio side by side.
const certificates = options.tls ? tempDir('nitrogen-bench-tls-') : undefined;
const benchTls = certificates ? new BenchCa(certificates.path).tls : undefined;
const counts = numbers(options.connections);
// No source address by default: binding one makes each connect search that address's ports (slow once many are in TIME_WAIT).
const sources = options.sources.split(',').filter(Boolean);
printHeader('MQTT QoS 1 ingest: Nitrogen (embedded store, durable) vs bare aedes');
console.log(`disk:    ${diskFacts()}`);
console.log(
  `load:    ${options.connections} connections, ${fmt(options.inflight)} QoS 1 PUBLISHes in flight in total, ~200-byte car telemetry JSON on devices/{id}/messages/telemetry, ${options.warmup}s warm-up + ${options.seconds}s measured, ${sources.length ? `from ${sources.join(', ')}` : 'source address chosen by the kernel'}`,
);
console.log(
  `peer:    bare aedes, its defaults (no authentication, in-memory persistence); Nitrogen: the CLI with the embedded default${options.store === 'sqlite' ? ' (PUBACK after the durable group commit)' : options.store === 'postgres' ? ', but store and registry on PostgreSQL (PUBACK after its durable commit)' : `, but store "${options.store}" (NOT the durable default)`}`,
);

// --store postgres: store and registry on a throwaway local PostgreSQL, a schema per server run.
const postgres = options.store === 'postgres' ? await startPostgresBench() : null;
if (postgres) console.log(`store:   PostgreSQL ${postgres.server.version} on this machine (unix socket, fsync and synchronous_commit on), store and registry; PUBACK after its commit`);

const windowFor = (connections: number) => Math.max(1, Math.min(1000, Math.round(options.inflight / connections)));

async function nitrogenPoint(connections: number, round: number, tls?: BenchTls): Promise<Point> {
  // --profile DIR: CPU profiles of every server thread, one subdirectory per connection count.
  // Absolute: the server runs in its data directory, removed after the run.
  const profileDir = options.profile && resolve(options.profile, String(connections));
  if (profileDir) {
    // Profiles of an earlier run would be summarized with this one's.
    if (round === 1) rmSync(profileDir, { recursive: true, force: true });
    mkdirSync(profileDir, { recursive: true });
  }
  // --allocations DIR: sampled allocations of the server, one subdirectory per connection count and round.
  const allocationsDir = options.allocations && resolve(options.allocations, String(connections), String(round) + (tls ? '-tls' : ''));
  if (allocationsDir) {
    rmSync(allocationsDir, { recursive: true, force: true });
    mkdirSync(allocationsDir, { recursive: true });
  }
  // A schema per server run: the TLS run of a point is a server of its own.
  const schema = `ingest_${connections}_${round}${tls ? '_tls' : ''}`;
  const nodeArgs = [...(profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : []), ...(allocationsDir ? allocationSamplerArgs(allocationsDir) : [])];
  const target = await startNitrogen({
    connections,
    store: options.store,
    nodeArgs,
    ...(tls ? { tls } : {}),
    ...(postgres ? { config: postgres.config(schema), countStored: () => postgres.stored(schema) } : {}),
  });
  const pgBefore = postgres ? postgresCpu(postgres.server) : 0;
  const point = await measureMqtt(target, { window: windowFor(connections), rate: 0, warmup: options.warmup, seconds: options.seconds, sources });
  // Over connecting, warm-up, window and drain, per acknowledged message: an upper bound for the window alone.
  if (postgres) console.log(`PostgreSQL CPU over the whole run: ${(((postgresCpu(postgres.server) - pgBefore) * 1e6) / point.ackedTotal).toFixed(1)} µs per acknowledged message (${fmt(point.ackedTotal)})`);
  return point;
}

async function aedesPoint(connections: number, tls?: BenchTls): Promise<Point> {
  return measureMqtt(await startAedes(connections, 'car', tls), { window: windowFor(connections), rate: 0, warmup: options.warmup, seconds: options.seconds, sources });
}

const results: Array<{ round: number; aedes: Point; nitrogen: Point }> = [];
for (let round = 1; round <= options.rounds; round++) {
  for (const connections of counts)
    for (const tls of benchTls ? [undefined, benchTls] : [undefined]) {
      // Alternate which server goes first, so a drift in the machine's load favours neither.
      const nitrogenFirst = round % 2 === 0;
      const first = nitrogenFirst ? await nitrogenPoint(connections, round, tls) : await aedesPoint(connections, tls);
      const second = nitrogenFirst ? await aedesPoint(connections, tls) : await nitrogenPoint(connections, round, tls);
      const [aedes, nitrogen] = nitrogenFirst ? [second, first] : [first, second];
      results.push({ round, aedes, nitrogen });
      console.log(`\nround ${round}, ${fmt(connections)} connections${tls ? ', over TLS' : ''}`);
      console.log(POINT_HEADER);
      console.log(POINT_RULE);
      console.log(pointRow(aedes));
      console.log(pointRow(nitrogen));
      console.log(`ratio Nitrogen / bare aedes: ${(nitrogen.load.rate / aedes.load.rate).toFixed(2)}`);
      console.log(storeLine(nitrogen));
      for (const problem of [...pointProblems(aedes).map((p) => `bare aedes: ${p}`), ...pointProblems(nitrogen).map((p) => `Nitrogen: ${p}`)]) console.log(`PROBLEM ${problem}`);
    }
}

// CPU per message says what each process needs for a rate, whatever the rest of the machine
// took meanwhile: the ratio of CPU per message is steadier on a shared machine than that of rates.
const perMessage = (p: Point, who: string) => (p.cpu.processes[who]!.cores / p.load.rate) * 1e6;
const at60k = (us: number) => ((us * 60_000) / 1e6).toFixed(2);
console.log('\n## Summary: Nitrogen against bare aedes, and how the cost grows with connections');
console.log(
  '| round | conns | bare aedes msgs/s | Nitrogen msgs/s | ratio | server CPU µs/msg: aedes / Nitrogen | ratio by CPU per msg | load gen CPU µs/msg (Nitrogen run) | cores for 60,000 msgs/s: Nitrogen / its load gen | Nitrogen RSS MiB | msgs/s vs first | RSS vs first |',
);
console.log('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const { round, aedes, nitrogen } of results) {
  const base = results.find((r) => r.round === round)!.nitrogen;
  const [a, n, l] = [perMessage(aedes, 'server'), perMessage(nitrogen, 'server'), perMessage(nitrogen, 'load')];
  console.log(
    `| ${round} | ${fmt(nitrogen.connections)}${nitrogen.target.endsWith('TLS') ? ' TLS' : ''} | ${fmt(aedes.load.rate)} | ${fmt(nitrogen.load.rate)} | ${(nitrogen.load.rate / aedes.load.rate).toFixed(2)} | ` +
      `${a.toFixed(1)} / ${n.toFixed(1)} | ${(a / n).toFixed(2)} | ${l.toFixed(1)} | ${at60k(n)} / ${at60k(l)} | ${fmt(nitrogen.rssMiB)} | ` +
      `${(nitrogen.load.rate / base.load.rate).toFixed(2)}x | ${(nitrogen.rssMiB / base.rssMiB).toFixed(2)}x |`,
  );
}
console.log('(CPU is user + system time of every thread of the process over the measured window; cores for 60,000 msgs/s = CPU per message × 60,000, assuming the cost per message stays as measured)');

if (options.profile) {
  for (const connections of counts) {
    console.log(`\n# CPU profile of the Nitrogen server at ${fmt(connections)} connections (one file per thread and round; the whole server run: registration, connecting and warm-up included)`);
    console.log(summarizeProfiles(resolve(options.profile, String(connections))).join('\n'));
  }
}

if (options.allocations) {
  for (const { round, nitrogen } of results) {
    console.log(`\n# Allocations of the Nitrogen server at ${fmt(nitrogen.connections)} connections, round ${round} (sampled over the whole server run, per message acknowledged in it)`);
    console.log(summarizeAllocations(resolve(options.allocations, String(nitrogen.connections), String(round)), nitrogen.ackedTotal).join('\n'));
  }
}

certificates?.remove();
await postgres?.stop();
