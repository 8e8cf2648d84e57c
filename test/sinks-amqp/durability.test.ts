// The amqp sink's guarantees under load, with the sink in its delivery worker thread: every
// acknowledged message reaches the broker across a broker outage and across a SIGKILL of the
// server mid-stream; duplicates (at-least-once) are counted and printed. Devices publish over
// real MQTT to the real CLI; the broker is the in-process rhea broker, behind a TCP gate that
// cuts it off. The same at 30,000 msgs/s lives in `npm run bench:sink` (docs/sinks.md).
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exited, spawnServer, type ServerProcess } from '../helpers/process.js';
import { tempDir } from '../helpers/temp.js';
import { CuttableProxy } from '../interop/proxy.js';
import { DeviceLoad } from './interop-kit.js';
import { RheaBroker } from './rhea-broker.js';
import { until } from './util.js';

const SECRET = 'durability-admin-secret-0123456789';
const delivery = { batchSize: 500, lingerMs: 5, retryMinMs: 50, retryMaxMs: 500, pollMs: 100, inFlight: 4, checkpointMs: 200 };

/**
 * `device:seq` of every message the broker received, with how often; read incrementally, since
 * the checks poll it while tens of thousands of messages arrive.
 */
const counted = new WeakMap<RheaBroker, { read: number; seen: Map<string, number> }>();
function arrivals(broker: RheaBroker): Map<string, number> {
  const state = counted.get(broker) ?? { read: 0, seen: new Map<string, number>() };
  counted.set(broker, state);
  const received = broker.received.get('telemetry') ?? [];
  for (; state.read < received.length; state.read++) {
    const envelope = JSON.parse(Buffer.from((received[state.read]!.body as { content: Buffer }).content).toString('utf8'));
    const key = `${envelope.from}:${envelope.body.seq}`;
    state.seen.set(key, (state.seen.get(key) ?? 0) + 1);
  }
  return state.seen;
}

async function allArrive(broker: RheaBroker, acked: Set<string>, label: string): Promise<void> {
  const missing = () => {
    const seen = arrivals(broker);
    return [...acked].filter((k) => !seen.has(k));
  };
  await until(() => missing().length === 0, 60_000, `every acknowledged message at the broker (${label})`).catch((err: Error) => {
    throw new Error(`${err.message}: ${missing().length} of ${acked.size} missing, e.g. ${missing().slice(0, 5).join(', ')}`);
  });
  const seen = arrivals(broker);
  const duplicates = [...seen.values()].reduce((n, c) => n + c - 1, 0);
  console.log(`      ${label}: ${acked.size} acknowledged, ${seen.size} distinct delivered, ${duplicates} duplicates`);
}

async function devices(server: ServerProcess, ids: string[]): Promise<Array<{ id: string; secret: string }>> {
  const res = await fetch(`${server.rest}/principals`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${await token(server)}` }, body: JSON.stringify(ids.map((id) => ({ type: 'device', id }))) });
  assert.equal(res.status, 201);
  return ((await res.json()) as { principals: Array<{ principal: { id: string }; secret: string }> }).principals.map((p) => ({ id: p.principal.id, secret: p.secret }));
}

/** SIGTERM, and the graceful stop must end within 30 s; otherwise the failure shows the server's output. */
async function stop(server: ServerProcess): Promise<void> {
  const started = Date.now();
  server.child.kill('SIGTERM');
  const timer = setTimeout(() => server.child.kill('SIGKILL'), 30_000);
  const { signal } = await exited(server.child);
  clearTimeout(timer);
  assert.notEqual(signal, 'SIGKILL', `the server did not stop within 30 s of SIGTERM; its output:\n${server.output().slice(-4000)}`);
  console.log(`      stopped ${Date.now() - started} ms after SIGTERM`);
}

async function token(server: ServerProcess): Promise<string> {
  const auth = await fetch(`${server.rest}/principals/auth`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: 'admin', secret: SECRET }) });
  return ((await auth.json()) as { accessToken: string }).accessToken;
}

describe('amqp sink durability under load (delivery worker thread)', function () {
  this.timeout(180_000);
  let broker: RheaBroker;
  let gate: CuttableProxy;
  let dir: ReturnType<typeof tempDir>;
  let env: Record<string, string>;

  beforeEach(async () => {
    broker = await RheaBroker.start();
    const { hostname, port } = new URL(broker.url);
    gate = await CuttableProxy.start({ host: hostname, port: Number(port) });
    dir = tempDir('nitrogen-sink-durability-');
    const config = join(dir.path, 'nitrogen.config.json');
    const sink = { use: 'amqp', name: 'broker', delivery, filter: { type: ['telemetry'] }, options: { url: `amqp://127.0.0.1:${gate.port}`, address: 'telemetry', sendTimeoutMs: 2000 } };
    writeFileSync(config, JSON.stringify({ sinks: [sink] }));
    env = { NITROGEN_CONFIG: config, NITROGEN_DATA_DIR: join(dir.path, 'data'), NITROGEN_ADMIN_SECRET: SECRET };
  });

  afterEach(async () => {
    await gate.stop();
    await broker.stop();
    dir.remove();
  });

  it('delivers every acknowledged message across a broker outage under load', async () => {
    const server = await spawnServer(env);
    try {
      const load = DeviceLoad.start(server.mqtt, await devices(server, ['car-1', 'car-2', 'car-3', 'car-4']));
      try {
        await until(() => arrivals(broker).size > 200, 20_000, 'deliveries before the outage');
        gate.close();
        const before = load.acked.size;
        await until(() => load.acked.size > before + 500, 20_000, 'ingestion going on during the outage');
        const status = (await (await fetch(`${server.rest}/sinks/broker`, { headers: { authorization: `Bearer ${await token(server)}` } })).json()) as { sink: { retrying: boolean } };
        assert.equal(status.sink.retrying, true, 'the sink retries while the broker is away');
        gate.open();
        const atOpen = arrivals(broker).size;
        await until(() => arrivals(broker).size > atOpen, 20_000, 'deliveries once the broker is back');
      } finally {
        await load.stop();
      }
      await allArrive(broker, load.acked, 'outage');
    } finally {
      await stop(server);
    }
  });

  it('delivers every acknowledged message when the server is killed mid-stream and restarted', async () => {
    let server = await spawnServer(env);
    const cars = await devices(server, ['car-1', 'car-2', 'car-3']);
    const first = DeviceLoad.start(server.mqtt, cars);
    await until(() => arrivals(broker).size > 500 && first.acked.size > 1000, 20_000, 'load and deliveries before the kill');
    server.child.kill('SIGKILL');
    await exited(server.child);
    await first.stop();

    server = await spawnServer(env);
    try {
      const second = DeviceLoad.start(server.mqtt, cars, { startSeq: 1_000_000 });
      await until(() => second.acked.size > 200, 20_000, 'load after the restart');
      await second.stop();
      await allArrive(broker, new Set([...first.acked, ...second.acked]), 'SIGKILL');
    } finally {
      await stop(server);
    }
  });
});
