// Interop: the amqp sink against RabbitMQ 3.x (rabbitmq_amqp1_0) and the Qpid Proton broker.
// Devices publish over MQTT to a real Nitrogen server; an independent rhea consumer at the
// broker checks that every acknowledged message arrives: end to end, across a broker outage
// under load, and across a SIGKILL of the server mid-stream. Duplicates (at-least-once) are
// counted and printed. Start the brokers with .ci/interop-brokers.sh and source its file.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Message } from '../../core/message.js';
import { exited, spawnServer } from '../helpers/process.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { tempDir } from '../helpers/temp.js';
import { brokerUrl } from './broker-url.js';
import { CuttableProxy } from './proxy.js';
import { Collector, DeviceLoad, rabbitmqctl } from '../sinks-amqp/interop-kit.js';
import { storedMessages, until } from '../sinks-amqp/util.js';

interface Broker {
  name: string;
  env: string;
  policy: 'rabbitmq' | 'qpid';
  address: (queue: string) => string;
  /** How the outage is made: RabbitMQ stops its AMQP application; the Proton example broker keeps queues in memory only, so the network to it is cut instead. */
  outage: 'stop_app' | 'gate';
}

const brokers: Broker[] = [
  { name: 'RabbitMQ (rabbitmq_amqp1_0)', env: 'RABBITMQ_AMQP_URL', policy: 'rabbitmq', address: (q) => `/queue/${q}`, outage: 'stop_app' },
  { name: 'Qpid Proton broker', env: 'QPID_AMQP_URL', policy: 'qpid', address: (q) => q, outage: 'gate' },
];

const SECRET = 'interop-admin-secret-0123456789';
const delivery = { batchSize: 500, lingerMs: 5, retryMinMs: 50, retryMaxMs: 500, pollMs: 100 };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let counter = 0;
const queue = (): string => `nitrogen-sinks-${process.pid}-${Date.now()}-${++counter}`;

async function register(rest: string, token: string, ids: string[]): Promise<Array<{ id: string; secret: string }>> {
  const res = await fetch(`${rest}/principals`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify(ids.map((id) => ({ type: 'device', id }))) });
  assert.equal(res.status, 201);
  return ((await res.json()) as { principals: Array<{ principal: { id: string }; secret: string }> }).principals.map((p) => ({ id: p.principal.id, secret: p.secret }));
}

async function adminToken(rest: string): Promise<string> {
  const res = await fetch(`${rest}/principals/auth`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: 'admin', secret: SECRET }) });
  return ((await res.json()) as { accessToken: string }).accessToken;
}

async function allArrive(collector: Collector, acked: Set<string>, label: string): Promise<void> {
  await until(() => collector.missing(acked).length === 0, 60_000, `every acknowledged message at the broker (${label})`).catch((err: Error) => {
    throw new Error(`${err.message}: ${collector.missing(acked).length} of ${acked.size} missing, e.g. ${collector.missing(acked).slice(0, 5).join(', ')}`);
  });
  console.log(`      ${label}: ${acked.size} acknowledged, ${collector.seen.size} distinct delivered, ${collector.duplicates} duplicates`);
}

for (const broker of brokers) {
  describe(`amqp sink interop: ${broker.name}`, function () {
    this.timeout(120_000);
    let url: string;
    let t: TestServer | undefined;
    let collector: Collector | undefined;

    before(function () {
      url = brokerUrl(this, broker.env);
    });
    afterEach(async () => {
      collector?.close();
      collector = undefined;
      await t?.stop();
      t = undefined;
    });

    const sinkConfig = (address: string, sinkUrl = url) => ({ use: 'amqp', name: 'broker', delivery, options: { url: sinkUrl, address, policy: broker.policy, sendTimeoutMs: 5000 } });

    it('delivers what devices publish, each message as its envelope says', async () => {
      const q = queue();
      collector = new Collector(url, broker.address(q));
      t = await startServer({ sinks: [sinkConfig(broker.address(q))] });
      const devices = await t.register([
        { type: 'device', id: 'car-1' },
        { type: 'device', id: 'car-2' },
      ]);
      const load = DeviceLoad.start(t.mqttUrl, devices);
      await sleep(500);
      await load.stop();
      await allArrive(collector, load.acked, broker.name);
      const stored = new Map<string, Message>((await storedMessages(t)).map((m) => [`${m.from}:${(m.body as { seq: number }).seq}`, m]));
      for (const [key, m] of collector.messages) {
        const e = stored.get(key)!;
        assert.deepEqual(JSON.parse(Buffer.from((m.body as { content: Buffer }).content).toString('utf8')) as Message, e);
        assert.equal(m.message_id, e.id);
        assert.equal(m.subject, 'telemetry');
        assert.equal(m.content_type, 'application/json');
        assert.equal((m.creation_time as Date).toISOString(), e.ts);
        assert.deepEqual(m.application_properties, { from: e.from, type: 'telemetry' });
      }
    });

    it('delivers every acknowledged message across a broker outage under load', async () => {
      const q = queue();
      const { hostname, port } = new URL(url);
      const gate = broker.outage === 'gate' ? await CuttableProxy.start({ host: hostname, port: Number(port) }) : undefined;
      const sinkUrl = gate ? `amqp://127.0.0.1:${gate.port}` : url;
      collector = new Collector(url, broker.address(q));
      t = await startServer({ sinks: [sinkConfig(broker.address(q), sinkUrl)] });
      const devices = await t.register(['car-1', 'car-2', 'car-3', 'car-4'].map((id) => ({ type: 'device' as const, id })));
      const load = DeviceLoad.start(t.mqttUrl, devices);
      try {
        await sleep(1000);
        if (gate) gate.close();
        else await rabbitmqctl('stop_app');
        const before = load.acked.size;
        await sleep(3000);
        const status = (await t.api('GET', '/sinks/broker')).body.sink;
        assert.equal(status.retrying, true, 'the sink retries while the broker is away');
        assert.ok(load.acked.size > before + 100, 'ingestion goes on during the outage');
        if (gate) gate.open();
        else await rabbitmqctl('start_app');
        await sleep(1000);
      } finally {
        await load.stop();
        if (!gate) await rabbitmqctl('start_app').catch(() => undefined);
      }
      await allArrive(collector, load.acked, `${broker.name}, outage`);
      await gate?.stop();
    });

    it('delivers every acknowledged message when the server is killed mid-stream and restarted', async () => {
      const q = queue();
      const dir = tempDir('nitrogen-sinks-kill-');
      const config = join(dir.path, 'nitrogen.config.json');
      writeFileSync(config, JSON.stringify({ sinks: [sinkConfig(broker.address(q))] }));
      const env = { NITROGEN_CONFIG: config, NITROGEN_DATA_DIR: join(dir.path, 'data'), NITROGEN_ADMIN_SECRET: SECRET };
      collector = new Collector(url, broker.address(q));
      try {
        let server = await spawnServer(env);
        const devices = await register(server.rest, await adminToken(server.rest), ['car-1', 'car-2', 'car-3']);
        const first = DeviceLoad.start(server.mqtt, devices);
        await sleep(1500);
        server.child.kill('SIGKILL');
        await exited(server.child);
        await first.stop();
        assert.ok(first.acked.size > 100, `load before the kill (${first.acked.size})`);

        server = await spawnServer(env);
        const second = DeviceLoad.start(server.mqtt, devices, { startSeq: 1_000_000 });
        await sleep(1000);
        await second.stop();
        const acked = new Set([...first.acked, ...second.acked]);
        try {
          await allArrive(collector, acked, `${broker.name}, SIGKILL`);
        } finally {
          server.child.kill('SIGTERM');
          await exited(server.child);
        }
      } finally {
        dir.remove();
      }
    });
  });
}
