import { performance } from 'node:perf_hooks';
import pino from 'pino';
import { Registry } from 'prom-client';
import { RedisBus } from '../adapters/redis/index.js';
import { RedisBusOptions } from '../adapters/redis/options.js';
import { bodyMessage, encodeMessage, type Message } from '../core/message.js';
import type { RemoteBatch } from '../core/ports/cluster.js';
import { carTelemetry } from './lib/load.js';
import { flags, fmt, printHeader } from './lib/machine.js';
import { startRedis } from './lib/redis-server.js';

/**
 * `npm run bench:cluster-bus`: what the Redis fan-out of committed messages costs per message.
 * Messages are published as the ingestion pipeline publishes them after a group commit:
 * `--batch` messages per call, `--calls` calls per turn of the event loop, their envelopes
 * already encoded (the commit encoded them). First the publishing side alone (nobody
 * subscribed), then one receiving instance in this process, end to end; each for the bus's
 * batching (`maxBatchBytes`, default 256 KiB) and for batches cut at 1 KiB (about one PUBLISH
 * per 4 messages, close to one per message). CPU is this process's (user + system); Redis's own
 * is read from its INFO.
 */
const options = flags({ messages: 300_000, batch: 100, calls: 10 });
printHeader('Cluster bus on Redis: cost per message of the live fan-out');

const bodies = carTelemetry(64);
const messages: Message[] = Array.from({ length: options.messages }, (_, i) => {
  const json = bodies[i % bodies.length]!;
  return bodyMessage({ sender: `car-${i % 1000}`, type: 'telemetry', now: Date.now(), bodyJson: json, body: JSON.parse(json) as unknown });
});
for (const m of messages) encodeMessage(m);
const envelopeBytes = messages.reduce((sum, m) => sum + encodeMessage(m).length, 0) / messages.length;
console.log(`load:    ${fmt(options.messages)} messages of ~${Math.round(envelopeBytes)} bytes, ${options.batch} per publish call, ${options.calls} calls per event-loop turn`);

const redis = await startRedis();
const logger = pino({ level: 'silent' });

async function redisCpuSeconds(): Promise<number> {
  const { Redis } = await import('ioredis');
  const client = new Redis(redis.url);
  const info = await client.info('cpu');
  client.disconnect();
  const field = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? 0);
  return field('used_cpu_sys') + field('used_cpu_user');
}

async function bus(id: string, maxBatchBytes: number, listener?: (batch: RemoteBatch) => void): Promise<RedisBus> {
  const b = new RedisBus(RedisBusOptions.parse({ url: redis.url, prefix: 'bench:', maxBatchBytes }), { id, run: id }, logger, new Registry(), listener !== undefined);
  if (listener) b.onMessages(listener);
  await b.start();
  return b;
}

async function run(label: string, maxBatchBytes: number, receive: boolean): Promise<void> {
  let received = 0;
  let allReceived = () => {};
  const all = new Promise<void>((resolve) => (allReceived = resolve));
  const publisher = await bus('pub', maxBatchBytes);
  const receiver = receive
    ? await bus('sub', maxBatchBytes, (batch) => {
        received += batch.messages.length;
        if (received >= messages.length) allReceived();
      })
    : undefined;
  const redisBefore = await redisCpuSeconds();
  const cpu = process.cpuUsage();
  const started = performance.now();
  let seq = 1;
  for (let i = 0; i < messages.length;) {
    for (let c = 0; c < options.calls && i < messages.length; c++, i += options.batch) {
      const slice = messages.slice(i, i + options.batch);
      publisher.publish(slice, seq);
      seq += slice.length;
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
  // Published once Redis answered every PUBLISH (QUIT waits for them); received once all arrived.
  if (receive) await all;
  await publisher.stop();
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  const redisSeconds = (await redisCpuSeconds()) - redisBefore;
  await receiver?.stop();
  const perMessage = (used.user + used.system) / messages.length;
  console.log(
    `${label.padEnd(44)} ${fmt(Math.round(messages.length / seconds)).padStart(10)} msgs/s  ${perMessage.toFixed(2).padStart(6)} µs/msg here  ${((redisSeconds * 1e6) / messages.length).toFixed(2).padStart(6)} µs/msg Redis${receive ? `  received ${fmt(received)}` : ''}`,
  );
}

await run('publish only, batched (256 KiB)', 256 * 1024, false);
await run('publish only, cut at 1 KiB', 1024, false);
await run('publish and receive, batched (256 KiB)', 256 * 1024, true);
await run('publish and receive, cut at 1 KiB', 1024, true);
await redis.stop();
