import assert from 'node:assert/strict';
import { connectAsync, type MqttClient } from 'mqtt';
import { postgresAvailable, sharedPostgres, type PostgresServer } from '../bench/lib/postgres-server.js';
import { redisAvailable, startRedis, type RedisServer } from '../bench/lib/redis-server.js';
import { TestCluster, eventually, metric, openEventStream } from './helpers/cluster.js';
import { nextMessage, type TestServer } from './helpers/server.js';

function mqtt(server: TestServer, id: string, secret: string, options: { clientId?: string; clean?: boolean } = {}): Promise<MqttClient> {
  return connectAsync(server.mqttUrl, { username: id, password: secret, clientId: options.clientId ?? `${id}-${Math.random().toString(16).slice(2, 8)}`, clean: options.clean ?? true, reconnectPeriod: 0, connectTimeout: 5000 });
}

/** The SUBACK's return codes: 1 granted, 128 refused. */
function subscribe(client: MqttClient, filters: string[]): Promise<number[]> {
  return new Promise((resolve, reject) => {
    client.subscribe(filters, { qos: 1 }, (err, granted) => {
      const suback = (err as { packet?: { granted?: number[] } } | null)?.packet?.granted;
      if (suback) resolve(suback);
      else if (err) reject(err);
      else resolve(granted!.map((g) => g.qos));
    });
  });
}

if (postgresAvailable() && redisAvailable()) {
  describe('Several instances as one service (PostgreSQL + Redis)', function () {
    this.timeout(60_000);
    let pg: PostgresServer;
    let redis: RedisServer;
    let cluster: TestCluster;
    const clients: MqttClient[] = [];

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

    async function connect(server: TestServer, id: string, secret: string, options: { clientId?: string; clean?: boolean } = {}): Promise<MqttClient> {
      const client = await mqtt(server, id, secret, options);
      clients.push(client);
      return client;
    }

    it('delivers a command sent through B to the device connected to A, once', async () => {
      const a = await cluster.start('a');
      const b = await cluster.start('b');
      const [device] = await b.register([{ type: 'device', id: 'car-cmd' }]);
      const car = await connect(a, device!.id, device!.secret);
      await car.subscribeAsync('devices/car-cmd/commands/#', { qos: 1 });
      const got: string[] = [];
      car.on('message', (_topic, payload) => got.push(JSON.parse(payload.toString()).id));

      const sent: string[] = [];
      for (const [server, n] of [
        [b, 1],
        [a, 2],
        [b, 3],
      ] as const) {
        const res = await server.api('POST', '/messages', { body: { type: 'unlock', to: 'car-cmd', body: { n } } });
        assert.equal(res.status, 201, JSON.stringify(res.body));
        sent.push(res.body.messages[0].id);
      }
      await eventually(async () => (got.includes(sent[2]!) ? true : undefined), 'the last command');
      assert.deepEqual(got, sent, 'each command arrives once, in order, whichever instance took it');
    });

    it("shows telemetry published through A on an app's SSE stream on C", async () => {
      const a = await cluster.start('a');
      const b = await cluster.start('b');
      const [device, app] = await b.register([
        { type: 'device', id: 'car-sse' },
        { type: 'app', id: 'dash' },
      ]);
      await b.grant({ issuedTo: 'dash', principalFor: 'car-sse', action: 'subscribe', authorized: true });
      // C starts after the grant and reads it from the store (the bus path for grants is tested below).
      const c = await cluster.start('c');
      const stream = await openEventStream(c, 'from=car-sse', await c.token(app!.id, app!.secret));
      try {
        const car = await connect(a, device!.id, device!.secret);
        await car.publishAsync('devices/car-sse/messages/telemetry', JSON.stringify({ speed: 88 }), { qos: 1 });
        const seen = await stream.next((e) => e.from === 'car-sse');
        assert.deepEqual(seen.body, { speed: 88 });
      } finally {
        stream.close();
      }
    });

    it("closes the device's MQTT session on A as soon as B disables it, and applies B's grants on A", async () => {
      const a = await cluster.start('a');
      const b = await cluster.start('b');
      const [device, app] = await b.register([
        { type: 'device', id: 'car-rev' },
        { type: 'app', id: 'watcher' },
      ]);
      const watcher = await connect(a, app!.id, app!.secret);
      assert.deepEqual(await subscribe(watcher, ['devices/car-rev/messages/#']), [128], 'no permission yet');
      await b.grant({ issuedTo: 'watcher', principalFor: 'car-rev', action: 'subscribe', authorized: true });
      // A reloads its records when B's event arrives (the periodic refresh is an hour away).
      await eventually(async () => ((await subscribe(watcher, ['devices/car-rev/messages/#']))[0] === 1 ? true : undefined), 'the grant on A');

      const car = await connect(a, device!.id, device!.secret);
      const closed = new Promise<void>((resolve) => car.once('close', () => resolve()));
      const res = await b.api('PATCH', '/principals/car-rev', { body: { enabled: false } });
      assert.equal(res.status, 200);
      await closed;
      await assert.rejects(mqtt(a, device!.id, device!.secret), /Not authorized|Bad username/);
    });

    it('queues a command for an offline persistent session and delivers it through another instance', async () => {
      const a = await cluster.start('a');
      const b = await cluster.start('b');
      const c = await cluster.start('c');
      const [device] = await b.register([{ type: 'device', id: 'car-away' }]);
      const first = await connect(a, device!.id, device!.secret, { clientId: 'car-away-1', clean: false });
      await first.subscribeAsync('devices/car-away/commands/#', { qos: 1 });
      await first.endAsync();
      // B matches deliveries against every persistent subscription it has heard of.
      await eventually(async () => ((await metric(b, 'nitrogen_mqtt_persistent_subscriptions')) === 1 ? true : undefined), 'B to know the subscription');

      const res = await b.api('POST', '/messages', { body: { type: 'flash', to: 'car-away', body: { lights: 3 } } });
      assert.equal(res.status, 201);
      const again = await connect(c, device!.id, device!.secret, { clientId: 'car-away-1', clean: false });
      const got = await nextMessage(again, 10_000);
      assert.equal(got.topic, 'devices/car-away/commands/flash');
      assert.equal(got.payload.id, res.body.messages[0].id);
    });

    it('keeps a client id to its principal and a persistent session to one connection across instances', async () => {
      const a = await cluster.start('a');
      const b = await cluster.start('b', {
        plugins: [
          { use: 'mqtt', options: { port: 0, maxSessions: 1 } },
          { use: 'rest', options: { port: 0 } },
        ],
      });
      const [one, two] = await b.register([
        { type: 'device', id: 'car-one' },
        { type: 'device', id: 'car-two' },
      ]);
      const held = await connect(a, one!.id, one!.secret, { clientId: 'the-id', clean: false });
      await assert.rejects(mqtt(b, two!.id, two!.secret, { clientId: 'the-id' }), /Identifier rejected/);
      // The same principal takes its id over: the older connection, on the other instance, ends [MQTT-3.1.4-2].
      const closed = new Promise<void>((resolve) => held.once('close', () => resolve()));
      await connect(b, one!.id, one!.secret, { clientId: 'the-id', clean: false });
      await closed;
      // maxSessions (1 on B) counts the sessions held through A too: both connected, none can go.
      await assert.rejects(mqtt(b, one!.id, one!.secret, { clientId: 'the-other-id', clean: false }), /Identifier rejected/);
    });

    it('keeps acknowledging while Redis is down, says so on /ready and /metrics, and delivers live again once it is back', async () => {
      const a = await cluster.start('a');
      const b = await cluster.start('b');
      const [device, app] = await b.register([
        { type: 'device', id: 'car-load' },
        { type: 'app', id: 'ops' },
      ]);
      await b.grant({ issuedTo: 'ops', principalFor: 'car-load', action: 'subscribe', authorized: true });
      const stream = await openEventStream(b, 'from=car-load', await b.token(app!.id, app!.secret));
      try {
        const car = await connect(a, device!.id, device!.secret);
        // Load through A the whole time Redis goes down and comes back: every PUBLISH is acknowledged.
        let acked = 0;
        let publishing = true;
        const load = (async () => {
          for (let i = 0; publishing; i++) {
            await car.publishAsync('devices/car-load/messages/telemetry', JSON.stringify({ i }), { qos: 1 });
            acked++;
          }
        })();
        await stream.next((e) => e.type === 'telemetry');

        await redis.halt();
        const ready = await eventually(async () => {
          const report = (await (await fetch(`${a.origin}/ready`)).json()) as any;
          return report.components.cluster?.status === 'down' ? report : undefined;
        }, '/ready to report the bus down');
        assert.equal(ready.ready, true, 'still ready: acknowledgements wait only for the store');
        assert.equal(await metric(a, 'nitrogen_cluster_bus_up'), 0);
        const duringOutage = acked;
        await eventually(async () => (acked >= duringOutage + 20 ? true : undefined), 'acknowledgements while Redis is down');

        await redis.start();
        await eventually(async () => ((await metric(a, 'nitrogen_cluster_bus_up')) === 1 && (await metric(b, 'nitrogen_cluster_bus_up')) === 1 ? true : undefined), 'both instances back on the bus');
        const marker = await a.api('POST', '/messages', { token: await a.token(device!.id, device!.secret), body: { type: 'marker', body: {} } });
        assert.equal(marker.status, 201);
        await stream.next((e) => e.id === marker.body.messages[0].id);
        publishing = false;
        await load;
        // Every acknowledged message is stored, the ones published while Redis was down included.
        const total = await eventually(async () => {
          const res = await b.api('GET', '/messages?from=car-load&type=telemetry&limit=1000');
          return res.body.messages.length >= acked ? res.body.messages.length : undefined;
        }, 'the stored messages');
        assert.equal(total, acked);
        assert.ok((await metric(a, 'nitrogen_cluster_dropped_messages_total{reason="disconnected"}'))! > 0, 'what could not go live was counted');
      } finally {
        stream.close();
      }
    });

    it('runs only the roles it is given', async () => {
      const registry = await cluster.start('registry', { cluster: { roles: ['registry'] } });
      const ingest = await cluster.start('ingest', { cluster: { roles: ['ingestion'] } });
      ingest.adminToken = registry.adminToken;
      assert.equal(registry.server.endpoints.mqtt, undefined, 'no MQTT on a registry instance');
      const [device] = await registry.register([{ type: 'device', id: 'car-roles' }]);
      assert.equal((await registry.api('POST', '/messages', { body: { type: 't', body: {} } })).status, 404);
      assert.equal((await ingest.api('GET', '/principals')).status, 404);
      assert.equal((await ingest.api('GET', '/messages')).status, 404);
      const car = await connect(ingest, device!.id, device!.secret);
      assert.deepEqual(await subscribe(car, ['devices/car-roles/commands/#', 'devices/+/messages/#']), [1, 128], "a device gets its commands from an ingestion instance, but no one else's messages");
      await car.publishAsync('devices/car-roles/messages/t', '{}', { qos: 1 });
    });
  });
}
