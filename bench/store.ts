import { readFileSync, readdirSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { SqliteStore } from '../adapters/sqlite/index.js';
import { bodyMessage, type Message } from '../core/message.js';
import { tempDir } from './lib/temp-dir.js';
import { carTelemetry } from './lib/load.js';
import { flags, printHeader } from './lib/machine.js';

/**
 * `npm run bench:sqlite`: the embedded store alone, driven like the server's group commit
 * drives it (one append in flight, `--batch` messages from `--senders` devices each), so its
 * cost per message can be compared without MQTT, the load generator or the event loop's other work.
 * Reports appends per second, the CPU per message of the main thread and of the whole process
 * (every thread), then the latency of a few queries.
 */
const options = flags({ senders: 1000, batch: 4000, seconds: 10, queries: 50, uncompacted: false });
printHeader('Embedded store: durable appends, then queries');
console.log(`load:    ${options.senders} senders, ${options.batch} messages per append, ${options.seconds}s`);

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

/**
 * CPU seconds each kind of thread has used so far (Linux: /proc/self/task/<tid>/stat, user +
 * system ticks), by thread name, the main thread as "main". Event-loop utilization would also
 * count the time a thread waits for a core on a shared machine; this counts work only.
 */
function threadCpu(): Map<string, number> {
  const cpu = new Map<string, number>();
  for (const tid of readdirSync('/proc/self/task')) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    } catch {
      continue; // the thread ended meanwhile
    }
    const name = Number(tid) === process.pid ? 'main' : `${stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))}:${tid}`;
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    cpu.set(name, (cpu.get(name) ?? 0) + (Number(fields[11]) + Number(fields[12])) / 100);
  }
  return cpu;
}

const dir = tempDir('nitrogen-store-bench-');
// --uncompacted: no compaction while appending (a tail as large as the run), to see what the journal alone costs.
const store = new SqliteStore(dir.path, options.uncompacted ? { file: 'messages.db', tailBytes: 2 ** 31, compactBytes: 2 ** 40, compactDelayMs: 3_600_000 } : { file: 'messages.db' });
await store.start();
try {
  const cpu = process.cpuUsage();
  const threadsBefore = threadCpu();
  const started = performance.now();
  const end = started + options.seconds * 1000;
  let appended = 0;
  let making = 0;
  const latencies: number[] = [];
  while (performance.now() < end) {
    const t0 = performance.now();
    const messages = batch(options.batch);
    const t = performance.now();
    making += t - t0;
    await store.append(messages);
    latencies.push(performance.now() - t);
    appended += messages.length;
  }
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  const threads = [...threadCpu()].map(([name, seconds]) => [name, seconds - (threadsBefore.get(name) ?? 0)] as const);
  const main = threads.find(([name]) => name === 'main')?.[1] ?? 0;
  latencies.sort((a, b) => a - b);
  const perMessage = (us: number) => (us / appended).toFixed(2);
  console.log(`appends: ${Math.round(appended / seconds).toLocaleString('en-US')} msgs/s; append p50 ${latencies[latencies.length >> 1]!.toFixed(1)} ms, p99 ${latencies[Math.floor(latencies.length * 0.99)]!.toFixed(1)} ms`);
  console.log(
    `cpu:     ${perMessage(used.user)} µs user + ${perMessage(used.system)} µs system per message (all threads); main thread ${perMessage(main * 1e6 - making * 1000)} µs per message (building the messages took another ${perMessage(making * 1000)} µs)`,
  );
  const busiest = threads.filter(([, seconds]) => seconds > 0).sort((a, b) => b[1] - a[1]);
  console.log(`threads: ${busiest.map(([name, seconds]) => `${name} ${perMessage(seconds * 1e6)}`).join(', ')} µs per message (the compactor is the busiest after main)`);

  const time = async (label: string, run: () => Promise<unknown>) => {
    const t = performance.now();
    for (let i = 0; i < options.queries; i++) await run();
    console.log(`query:   ${label}: ${((performance.now() - t) / options.queries).toFixed(2)} ms`);
  };
  const last = (made - 1) % options.senders;
  await time('newest 100, all senders (desc)', () => store.query({ order: 'desc', limit: 100 }));
  await time('oldest 100, all senders (asc)', () => store.query({ order: 'asc', limit: 100 }));
  await time(`newest 100 of one sender (desc)`, () => store.query({ order: 'desc', limit: 100, from: [`car-${last}`] }));
  await time(`oldest 100 of one sender (asc)`, () => store.query({ order: 'asc', limit: 100, from: [`car-${last}`] }));
  await time('feed, 1,000 from the start', () => store.readFeed(null, 1000));
} finally {
  await store.stop();
  dir.remove();
}
