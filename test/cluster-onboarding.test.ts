// Onboarding, presence, last-known state and twins on several instances sharing PostgreSQL and
// a Redis bus (docs/cluster.md, "Onboarding on a cluster"). Real MQTT and HTTP against real servers.
import assert from 'node:assert/strict';
import { connectAsync, type MqttClient } from 'mqtt';
import { postgresAvailable, sharedPostgres, type PostgresServer } from '../bench/lib/postgres-server.js';
import { redisAvailable, startRedis, type RedisServer } from '../bench/lib/redis-server.js';
import { TestCluster, eventually } from './helpers/cluster.js';
import { nextMessage, type TestServer } from './helpers/server.js';

if (postgresAvailable() && redisAvailable()) {
  describe('Onboarding and device state on several instances (PostgreSQL + Redis)', function () {
    this.timeout(60_000);
    let pg: PostgresServer;
    let redis: RedisServer;
    let cluster: TestCluster;
    const clients: MqttClient[] = [];
    // Presence written at once, so a test waits for the state it asserts rather than for a flush.
    const devices = { presenceEvents: true, presenceFlush: '10ms' };

    before(async () => {
      [pg, redis] = await Promise.all([sharedPostgres(), startRedis()]);
    });
    after(async () => {
      await redis?.stop();
    });
    beforeEach(() => {
      cluster = new TestCluster(pg, redis);
    });
    afterEach(async () => {
      for (const client of clients.splice(0)) await client.endAsync(true).catch(() => {});
      await cluster.stop();
    });

    async function connect(server: TestServer, id: string, secret: string, clientId = `${id}-${Math.random().toString(16).slice(2, 8)}`): Promise<MqttClient> {
      const client = await connectAsync(server.mqttUrl, { username: id, password: secret, clientId, reconnectPeriod: 0, connectTimeout: 5000 });
      clients.push(client);
      return client;
    }

    it('registers a device with an API key made on another instance, and a person claims it on a third', async () => {
      const a = await cluster.start('a');
      const b = await cluster.start('b');
      const c = await cluster.start('c');
      const [factory, ann] = (await b.register([
        { type: 'app', id: 'factory' },
        { type: 'app', id: 'ann' },
      ])) as [{ id: string; secret: string }, { id: string; secret: string }];
      const made = await b.api('POST', '/api-keys', { token: await b.token(factory.id, factory.secret), body: {} });
      assert.equal(made.status, 201, JSON.stringify(made.body));

      const registered = await a.api('POST', '/devices/register', { token: null, headers: { authorization: `ApiKey ${made.body.key}` }, body: { id: 'thermo-1' } });
      assert.equal(registered.status, 201, JSON.stringify(registered.body));
      await connect(c, 'thermo-1', registered.body.secret);

      const annToken = await c.token(ann.id, ann.secret);
      assert.equal((await c.api('POST', '/claims', { token: annToken, body: { code: registered.body.claimCode.code } })).status, 200);
      // The grant reaches the other instances on the bus: in force as soon as they hear of it, not in the same instant.
      await eventually(async () => ((await a.api('GET', '/principals/thermo-1', { token: annToken })).status === 200 ? true : undefined), 'the claim to hold on every instance');
      assert.notEqual((await b.api('POST', '/claims', { token: annToken, body: { code: registered.body.claimCode.code } })).status, 200, 'a code works once, whichever instance is asked');
    });

    it('tells presence by the instance holding the connection, and a device that moves to another instance stays connected there', async () => {
      const a = await cluster.start('a', { devices });
      const b = await cluster.start('b', { devices });
      const [device, app] = (await b.register([
        { type: 'device', id: 'car-move' },
        { type: 'app', id: 'dash' },
      ])) as [{ id: string; secret: string }, { id: string; secret: string }];
      await b.grant({ issuedTo: 'dash', principalFor: 'car-move', action: 'subscribe', authorized: true });
      const watcher = await connect(b, app.id, app.secret);
      await watcher.subscribeAsync('devices/car-move/messages/#', { qos: 1 });

      const first = nextMessage(watcher, 10_000);
      const onA = await connect(a, device.id, device.secret, 'car-move-main');
      assert.deepEqual({ type: (await first).payload.type, instance: (await first).payload.body.instance }, { type: 'nitrogen.connected', instance: 'a' });
      const presenceOnB = () => b.api('GET', '/principals/car-move/state').then((res) => res.body.presence);
      await eventually(async () => ((await presenceOnB())?.instance === 'a' ? true : undefined), 'B to read the presence A wrote');

      // The same client id through B takes the connection over [MQTT-3.1.4-2]: the device moved, it did not disconnect.
      const closedOnA = new Promise<void>((resolve) => onA.once('close', () => resolve()));
      const second = nextMessage(watcher, 10_000);
      await connect(b, device.id, device.secret, 'car-move-main');
      await closedOnA;
      assert.deepEqual({ type: (await second).payload.type, instance: (await second).payload.body.instance }, { type: 'nitrogen.connected', instance: 'b' });
      // Stopping A writes whatever presence it still holds.
      await a.stop();
      const presence = await presenceOnB();
      assert.deepEqual({ connected: presence.connected, instance: presence.instance }, { connected: true, instance: 'b' });
      const told = await b.api('GET', '/messages?from=car-move&type=nitrogen.connected,nitrogen.disconnected&order=asc');
      assert.deepEqual(
        told.body.messages.map((m: { type: string; body: { instance: string } }) => `${m.type}@${m.body.instance}`),
        ['nitrogen.connected@a', 'nitrogen.connected@b'],
      );
    });

    it('keeps every type a device sent in its last-known state, whichever instance took each', async () => {
      const a = await cluster.start('a');
      const b = await cluster.start('b');
      const [device] = (await a.register([{ type: 'device', id: 'car-types' }])) as [{ id: string; secret: string }];
      const token = await a.token(device.id, device.secret);
      for (const [server, type] of [
        [a, 'speed'],
        [b, 'location'],
        [a, 'battery'],
      ] as const) {
        assert.equal((await server.api('POST', '/messages', { token, body: { type, body: { via: server === a ? 'a' : 'b' } } })).status, 201);
      }
      for (const server of [a, b]) {
        const { latest } = (await server.api('GET', '/principals/car-types/state')).body;
        assert.deepEqual(Object.keys(latest).sort(), ['battery', 'location', 'speed']);
      }
    });

    it('sends a desired state set through B to the device on A, and shows on B what it reported through A', async () => {
      const a = await cluster.start('a');
      const b = await cluster.start('b');
      const [device] = (await b.register([{ type: 'device', id: 'car-twin' }])) as [{ id: string; secret: string }];
      const car = await connect(a, device.id, device.secret);
      await car.subscribeAsync('devices/car-twin/commands/#', { qos: 1 });
      const command = nextMessage(car, 10_000);
      assert.equal((await b.api('PATCH', '/principals/car-twin/twin/desired', { body: { interval: 5 } })).status, 200);
      const got = await command;
      assert.equal(got.topic, 'devices/car-twin/commands/nitrogen.desired');
      assert.deepEqual(got.payload.body, { patch: { interval: 5 }, version: 1 });

      await car.publishAsync('devices/car-twin/messages/nitrogen.reported', JSON.stringify({ interval: 5, firmware: '2.0' }), { qos: 1 });
      const { twin } = (await b.api('GET', '/principals/car-twin/state')).body;
      assert.deepEqual(twin.reported, { interval: 5, firmware: '2.0' });
      assert.equal(twin.delta, null);
    });

    it('serves onboarding routes by role: credentials on registry instances, state and stream tickets on consumption ones', async () => {
      const registry = await cluster.start('registry', { cluster: { roles: ['registry'] } });
      const consumption = await cluster.start('consumption', { cluster: { roles: ['consumption'] } });
      const ingestion = await cluster.start('ingestion', { cluster: { roles: ['ingestion'] } });
      consumption.adminToken = ingestion.adminToken = registry.adminToken;
      await registry.register([{ type: 'device', id: 'car-role' }]);
      const status = async (server: TestServer, method: string, path: string, body?: unknown) => (await server.api(method, path, body === undefined ? {} : { body })).status;

      assert.equal(await status(registry, 'POST', '/api-keys', {}), 201);
      assert.equal(await status(registry, 'GET', '/certificate-authorities'), 200);
      assert.equal(await status(registry, 'GET', '/principals/car-role/state'), 404);
      assert.equal(await status(registry, 'POST', '/messages/stream/tickets'), 404);

      assert.equal(await status(consumption, 'GET', '/principals/car-role/state'), 200);
      assert.equal(await status(consumption, 'POST', '/messages/stream/tickets'), 201);
      assert.equal(await status(consumption, 'POST', '/api-keys', {}), 404);
      assert.equal(await status(consumption, 'PATCH', '/principals/car-role/twin/desired', { mode: 'eco' }), 404);

      assert.equal(await status(ingestion, 'PATCH', '/principals/car-role/twin/desired', { mode: 'eco' }), 200);
      assert.equal(await status(ingestion, 'POST', '/claims', { code: 'AAAAA-AAAAA' }), 404);
    });
  });
}
