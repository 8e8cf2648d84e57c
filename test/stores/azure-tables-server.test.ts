import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { defaultCatalog } from '../../catalog.js';
import type { NitrogenConfigInput } from '../../core/config.js';
import type { Message } from '../../core/message.js';
import { definePlugin } from '../../core/plugin.js';
import { startAzurite, type Azurite } from '../helpers/azurite.js';
import { startServer, type ApiResponse, type TestServer } from '../helpers/server.js';

/** Records what it is sent: the downstream end of the feed in these tests. */
const delivered: Message[] = [];
const recordingSink = definePlugin({ name: 'recording', kind: 'sink', create: ({ name }) => ({ name, send: async (batch: Message[]) => void delivered.push(...batch) }) });
const catalog = { ...defaultCatalog, sink: { recording: async () => recordingSink } };

/** Resolves once `check` holds; fails the test if it does not within `ms`. */
async function until(check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  for (const end = Date.now() + ms; !(await check());) {
    if (Date.now() > end) throw new Error(`condition not met within ${ms} ms: ${check}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Walks every page of a REST query; returns the messages in the order served. */
async function pageAll(server: TestServer, query: string, token?: string): Promise<Message[]> {
  const out: Message[] = [];
  let cursor: string | null = null;
  do {
    const res: ApiResponse = await server.api('GET', `/messages?${query}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, { token });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    out.push(...res.body.messages);
    cursor = res.body.next;
  } while (cursor);
  return out;
}

describe('Nitrogen servers on Azure Tables (Azurite)', function () {
  this.timeout(60_000);
  let azurite: Azurite;
  const servers: TestServer[] = [];

  before(async () => {
    azurite = await startAzurite();
  });
  afterEach(async () => {
    for (const server of servers.splice(0)) await server.stop();
  });
  after(async () => {
    await azurite?.stop();
  });

  /** Every instance shares the tables and the token key, and keeps nothing of its own on disk. */
  function config(tablePrefix: string): NitrogenConfigInput {
    const options = { connectionString: azurite.connectionString, tablePrefix };
    return {
      store: { use: 'azure-tables', options },
      registry: { use: 'azure-tables', options },
      identity: { use: 'default', options: { tokenSecret: 'shared-token-secret-of-the-test-deployment' } },
    };
  }

  async function start(tablePrefix: string, extra: NitrogenConfigInput = {}): Promise<TestServer> {
    const server = await startServer({ ...config(tablePrefix), ...extra }, undefined, catalog);
    servers.push(server);
    return server;
  }

  it('stores what devices publish over MQTT, pages through it over REST, and keeps it across a restart', async () => {
    const prefix = 'e' + randomBytes(5).toString('hex');
    const first = await start(prefix);
    const [car, truck] = await first.register([
      { type: 'device', id: 'car-e2e' },
      { type: 'device', id: 'truck-e2e' },
    ]);
    const sent: string[] = [];
    await Promise.all(
      [car!, truck!].map(async (device) => {
        const client = await first.mqtt(device.id, device.secret);
        for (let i = 0; i < 30; i++) {
          const ts = new Date(Date.UTC(2026, 5, 1, 12, 0, i)).toISOString();
          const id = `${device.id}-${i}`;
          // Alternate a batch envelope on …/messages with a bare body on …/messages/{type}.
          if (i % 2) await client.publishAsync(`devices/${device.id}/messages`, JSON.stringify([{ id, type: 'telemetry', ts, body: { i } }]), { qos: 1 });
          else await client.publishAsync(`devices/${device.id}/messages`, JSON.stringify({ id, type: 'location', ts, body: { i }, tags: ['gps'] }), { qos: 1 });
          sent.push(id);
        }
        await client.endAsync();
      }),
    );

    const carIds = sent.filter((id) => id.startsWith('car-')).sort((a, b) => Number(a.split('-').pop()) - Number(b.split('-').pop()));
    assert.deepEqual(
      (await pageAll(first, 'from=car-e2e&limit=7')).map((m) => m.id),
      carIds,
    );
    assert.deepEqual(
      (await pageAll(first, 'from=car-e2e&order=desc&limit=4')).map((m) => m.id),
      [...carIds].reverse(),
    );
    assert.equal((await pageAll(first, 'limit=9')).length, 60);
    assert.equal((await pageAll(first, 'type=location&tag=gps&limit=6')).length, 30);

    await first.stop();
    servers.splice(servers.indexOf(first), 1);
    const second = await start(prefix);
    // The registry kept the device and its secret; the store kept every message.
    const carToken = await second.token(car!.id, car!.secret);
    assert.deepEqual(
      (await pageAll(second, 'limit=11', carToken)).map((m) => m.id),
      carIds,
      'a device sees its own messages',
    );
    assert.equal((await pageAll(second, 'limit=50')).length, 60);
  });

  it('lets a query through one instance see what a device sent through another', async () => {
    const prefix = 'e' + randomBytes(5).toString('hex');
    const a = await start(prefix);
    const b = await start(prefix);
    const [car] = await a.register([{ type: 'device' }]);
    const client = await b.mqtt(car!.id, car!.secret);
    await client.publishAsync(`devices/${car!.id}/messages/telemetry`, JSON.stringify({ speed: 88 }), { qos: 1 });
    await client.endAsync();
    const res = await a.api('GET', `/messages?from=${car!.id}`);
    assert.equal(res.status, 200);
    assert.deepEqual(
      res.body.messages.map((m: Message) => [m.from, m.type, m.body]),
      [[car!.id, 'telemetry', { speed: 88 }]],
    );
    // And a token issued by one instance works on the other.
    const token = await b.token(car!.id, car!.secret);
    assert.equal((await a.api('GET', `/messages/${res.body.messages[0].id}`, { token })).status, 200);
  });

  it('feeds a sink on one instance with what devices send through another', async () => {
    const prefix = 'e' + randomBytes(5).toString('hex');
    delivered.length = 0;
    const withSink = await start(prefix, { sinks: [{ use: 'recording', name: 'downstream', delivery: { batchSize: 50, lingerMs: 5, retryMinMs: 20, retryMaxMs: 100, pollMs: 50 } }] });
    const other = await start(prefix);
    const devices = await other.register([{ type: 'device' }, { type: 'device' }]);
    const sent: string[] = [];
    await Promise.all(
      devices.map(async (device) => {
        const client = await other.mqtt(device.id, device.secret);
        for (let i = 0; i < 20; i++) {
          const id = `${device.id}-m${i}`;
          await client.publishAsync(`devices/${device.id}/messages`, JSON.stringify({ id, type: 'telemetry', body: { i } }), { qos: 1 });
          sent.push(id);
        }
        await client.endAsync();
      }),
    );
    await until(() => delivered.length >= sent.length);
    assert.deepEqual(new Set(delivered.map((m) => m.id)), new Set(sent));
    assert.equal(delivered.length, sent.length, 'each once');
    // The lag counts from the durable checkpoint, written after the sink accepted: wait for it.
    await until(async () => /^nitrogen_sink_lag_messages\{sink="downstream"\} 0$/m.test((await withSink.api('GET', '/metrics')).body));
  });
});
