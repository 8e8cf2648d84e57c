// What the service knows of a device: presence (with connection events others subscribe to),
// the latest message of each type, and its twin; and that all of it survives a restart, a
// SIGKILL included. Real MQTT and HTTP against real servers.
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connectAsync } from 'mqtt';
import { exited, spawnServer } from './helpers/process.js';
import { ADMIN_SECRET, nextMessage, startServer, type TestServer } from './helpers/server.js';
import { tempDir } from './helpers/temp.js';

describe('Presence, last-known state and twins', function () {
  this.timeout(30_000);
  const dir = tempDir();
  let t: TestServer;
  let car: { id: string; secret: string };
  let app: { id: string; secret: string };

  before(async () => {
    t = await startServer({ cluster: { instanceId: 'node-a' }, devices: { presenceEvents: true } }, dir.path);
    [car, app] = (await t.register([
      { type: 'device', id: 'car-1' },
      { type: 'app', id: 'dash' },
    ])) as [typeof car, typeof app];
    await t.grant({ issuedTo: 'dash', principalFor: 'car-1', action: 'admin', authorized: true });
  });
  after(async () => {
    await t?.stop();
    dir.remove();
  });

  it('tells connections and disconnections as messages a subscriber receives, and answers presence', async () => {
    const watcher = await t.mqtt(app!.id, app!.secret);
    await watcher.subscribeAsync('devices/+/messages/nitrogen.connected', { qos: 1 });
    await watcher.subscribeAsync('devices/+/messages/nitrogen.disconnected', { qos: 1 });
    const connected = nextMessage(watcher);
    const device = await t.mqtt(car!.id, car!.secret);
    const event = (await connected).payload;
    assert.equal(event.from, 'car-1');
    assert.deepEqual(event.body, { instance: 'node-a', transport: 'mqtt', address: '127.0.0.1' });
    const presence = (await t.api('GET', '/principals/car-1/state')).body.presence;
    assert.equal(presence.connected, true);
    assert.equal(presence.instance, 'node-a');

    const disconnected = nextMessage(watcher);
    await device.endAsync();
    assert.equal((await disconnected).payload.body.reason, 'disconnected');
    // A connection lost without DISCONNECT says so.
    const again = await t.mqtt(car!.id, car!.secret);
    await nextMessage(watcher);
    const lost = nextMessage(watcher);
    again.stream.destroy();
    assert.equal((await lost).payload.body.reason, 'connection lost');
    assert.equal((await t.api('GET', '/principals/car-1/state')).body.presence.connected, false);
    await again.endAsync(true);
    await watcher.endAsync();
  });

  it('lists principals with their presence when asked (GET /principals?with=presence), only those the caller may view', async () => {
    const [idle] = await t.register([{ type: 'device', id: 'car-idle' }]);
    const device = await t.mqtt(car!.id, car!.secret);
    try {
      const listed = (await t.api('GET', '/principals?type=device&with=presence')).body.principals as Array<{ id: string; presence: { connected: boolean; instance: string } | null }>;
      const byId = new Map(listed.map((p) => [p.id, p.presence]));
      assert.equal(byId.get('car-1')?.connected, true);
      assert.equal(byId.get('car-1')?.instance, 'node-a');
      assert.equal(byId.get(idle!.id), null, 'never connected');
      // Without the parameter, the principals as before; with another value, a 400.
      assert.equal('presence' in (await t.api('GET', '/principals?type=device')).body.principals[0], false);
      assert.equal((await t.api('GET', '/principals?with=secrets')).status, 400);
      // The app sees the device it holds admin on, with its presence, and not the other one.
      const token = await t.token(app!.id, app!.secret);
      const seen = (await t.api('GET', '/principals?type=device&with=presence', { token })).body.principals as Array<{ id: string; presence: { connected: boolean } | null }>;
      assert.deepEqual(
        seen.map((p) => [p.id, p.presence?.connected]),
        [['car-1', true]],
      );
    } finally {
      await device.endAsync();
    }
  });

  it('answers the latest message of each type in one call', async () => {
    const token = await t.token(car!.id, car!.secret);
    for (const body of [
      { type: 'telemetry', body: { speed: 10 } },
      { type: 'telemetry', body: { speed: 20 } },
      { type: 'location', body: { lat: 1 } },
    ]) {
      assert.equal((await t.api('POST', '/messages', { token, body })).status, 201);
    }
    const { latest } = (await t.api('GET', '/principals/car-1/state', { token: await t.token(app!.id, app!.secret) })).body;
    assert.deepEqual(latest.telemetry.body, { speed: 20 });
    assert.deepEqual(latest.location.body, { lat: 1 });
    // Only those who may view the device.
    const [other] = await t.register([{ type: 'app' }]);
    assert.equal((await t.api('GET', '/principals/car-1/state', { token: await t.token(other!.id, other!.secret) })).status, 403);
  });

  it('keeps a twin: desired changes reach the device, it reports, and on subscribing it gets what still differs', async () => {
    const appToken = await t.token(app!.id, app!.secret);
    const device = await t.mqtt(car!.id, car!.secret);
    await device.subscribeAsync('devices/car-1/commands/nitrogen.desired', { qos: 1 });
    const desired = nextMessage(device);
    const set = await t.api('PATCH', '/principals/car-1/twin/desired', { token: appToken, body: { interval: 10, mode: { eco: true } } });
    assert.equal(set.status, 200);
    assert.deepEqual(set.body.twin.delta, { interval: 10, mode: { eco: true } });
    const command = (await desired).payload;
    assert.equal(command.from, 'dash');
    assert.deepEqual(command.body, { patch: { interval: 10, mode: { eco: true } }, version: 1 });

    // The device applies part of it and reports, as a message (stored, like any other).
    await device.publishAsync('devices/car-1/messages/nitrogen.reported', JSON.stringify({ interval: 10, firmware: '1.2' }), { qos: 1 });
    const twin = (await t.api('GET', '/principals/car-1/state', { token: appToken })).body.twin;
    assert.deepEqual(twin.reported, { interval: 10, firmware: '1.2' });
    assert.deepEqual(twin.delta, { mode: { eco: true } });
    await device.endAsync();

    // Reconnecting and subscribing to its commands, it gets the delta at once.
    const back = await t.mqtt(car!.id, car!.secret);
    const delta = nextMessage(back);
    await back.subscribeAsync('devices/car-1/commands/#', { qos: 1 });
    const got = await delta;
    assert.equal(got.topic, 'devices/car-1/commands/nitrogen.delta');
    assert.deepEqual(got.payload.body, { delta: { mode: { eco: true } }, desiredVersion: 1 });
    await back.endAsync();

    // Only nitrogen.reported is a client's to send, and only as an object.
    const token = await t.token(car!.id, car!.secret);
    assert.equal((await t.api('POST', '/messages', { token, body: { type: 'nitrogen.connected', body: {} } })).status, 400);
    assert.equal((await t.api('POST', '/messages', { token, body: { type: 'nitrogen.reported', body: [1] } })).status, 400);
  });

  it('keeps presence, last-known state, twins and connection events across a restart', async () => {
    await t.stop();
    t = await startServer({ cluster: { instanceId: 'node-a' }, devices: { presenceEvents: true } }, dir.path);
    const state = (await t.api('GET', '/principals/car-1/state')).body;
    assert.equal(state.presence.connected, false);
    assert.deepEqual(state.latest.telemetry.body, { speed: 20 });
    assert.deepEqual(state.twin.desired, { interval: 10, mode: { eco: true } });
    const events = (await t.api('GET', '/messages?from=car-1&type=nitrogen.connected,nitrogen.disconnected&order=asc')).body.messages;
    assert.ok(events.length >= 4, JSON.stringify(events));
    assert.equal(events.at(-1).type, 'nitrogen.disconnected');
  });

  it('marks a device disconnected, with an event, when the instance that held it was killed', async () => {
    const data = tempDir();
    writeFileSync(join(data.path, 'nitrogen.config.json'), JSON.stringify({ devices: { presenceEvents: true } }));
    const env = { NITROGEN_DATA_DIR: data.path, NITROGEN_ADMIN_SECRET: ADMIN_SECRET, NITROGEN_CONFIG: join(data.path, 'nitrogen.config.json') };
    try {
      let server = await spawnServer(env);
      const admin = await login(server.rest, 'admin', ADMIN_SECRET);
      const [device] = (await call(server.rest, 'POST', '/principals', admin, [{ type: 'device', id: 'car-9' }])).principals;
      const client = await connectAsync(server.mqtt, { username: 'car-9', password: device.secret, reconnectPeriod: 0 });
      // Wait until the registry holds it connected (presence is written in batches).
      const registry = new Database(join(data.path, 'registry.db'), { readonly: true });
      const held = () => registry.prepare<[], { value: string }>("SELECT value FROM records WHERE kind = 'presence' AND key = 'car-9'").get();
      while (!held() || !(JSON.parse(held()!.value) as { connected: boolean }).connected) await new Promise((resolve) => setTimeout(resolve, 20));
      registry.close();
      server.child.kill('SIGKILL');
      await exited(server.child);
      client.end(true);

      server = await spawnServer(env);
      const token = await login(server.rest, 'admin', ADMIN_SECRET);
      const state = await call(server.rest, 'GET', '/principals/car-9/state', token);
      assert.equal(state.presence.connected, false);
      const events = (await call(server.rest, 'GET', '/messages?from=car-9&type=nitrogen.disconnected', token)).messages;
      assert.deepEqual(
        events.map((m: { body: { reason: string } }) => m.body.reason),
        ['the instance restarted'],
      );
      server.child.kill('SIGTERM');
      await exited(server.child);
    } finally {
      data.remove();
    }
  });
});

async function call(base: string, method: string, path: string, token?: string, body?: unknown): Promise<any> {
  const res = await fetch(base + path, { method, headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: body === undefined ? undefined : JSON.stringify(body) });
  return res.json();
}

async function login(base: string, id: string, secret: string): Promise<string> {
  return (await call(base, 'POST', '/principals/auth', undefined, { id, secret })).accessToken;
}
