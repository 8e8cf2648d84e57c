import assert from 'node:assert/strict';
import type { MqttClient } from 'mqtt';
import net from 'node:net';
import { connectPacket, publishTemplate } from '../samples/car-telemetry/mqtt-wire.js';
import { collect, nextMessage, startServer, type TestServer } from './helpers/server.js';

function closed(client: MqttClient, ms = 3000): Promise<void> {
  return new Promise((resolve, reject) => {
    if (!client.connected) return resolve();
    const timer = setTimeout(() => reject(new Error('connection was not closed')), ms);
    client.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** SUBSCRIBE and return the granted QoS per filter; mqtt.js rejects when any is 0x80, so read the SUBACK. */
function subscribe(client: MqttClient, filters: string | string[]): Promise<number[]> {
  return new Promise((resolve, reject) => {
    client.subscribe(filters, { qos: 1 }, (err, granted) => {
      const suback = (err as { packet?: { granted?: number[] } } | null)?.packet?.granted;
      if (suback) resolve(suback);
      else if (err) reject(err);
      else resolve(granted!.map((g) => g.qos));
    });
  });
}

describe('MQTT transport', function () {
  let t: TestServer;
  const secrets: Record<string, string> = {};
  const clients: MqttClient[] = [];

  async function connect(id: string, password = secrets[id]!): Promise<MqttClient> {
    const client = await t.mqtt(id, password);
    clients.push(client);
    return client;
  }

  before(async () => {
    t = await startServer();
    for (const p of await t.register([
      { type: 'device', id: 'car-1' },
      { type: 'device', id: 'car-2' },
      { type: 'app', id: 'dash' },
      { type: 'app', id: 'nosy' },
    ]))
      secrets[p.id] = p.secret;
    await t.grant({ issuedTo: 'dash', principalFor: 'car-1', action: 'subscribe', authorized: true });
    await t.grant({ issuedTo: 'dash', principalFor: 'car-1', action: 'send', authorized: true });
    await t.grant({ issuedTo: 'dash', principalFor: 'car-1', action: 'view', authorized: true });
  });

  afterEach(() => {
    for (const c of clients.splice(0)) c.end(true);
  });

  after(() => t.stop());

  const stored = async (query: string) => (await t.api('GET', `/messages?${query}`)).body.messages;

  it('refuses CONNECT with return code 4 for a bad secret or unknown principal, 5 for a disabled one', async () => {
    await assert.rejects(t.mqtt('car-1', 'wrong'), (err: any) => err.code === 4);
    await assert.rejects(t.mqtt('nobody', secrets['car-1']!), (err: any) => err.code === 4);
    await assert.rejects(t.mqtt('car-1', ''), (err: any) => err.code === 4);
    const [d] = await t.register([{ type: 'device', id: 'disabled-car' }]);
    await t.api('PATCH', '/principals/disabled-car', { body: { enabled: false } });
    await assert.rejects(t.mqtt(d!.id, d!.secret), (err: any) => err.code === 5);
  });

  it('accepts an access token as the password, only for its own principal', async () => {
    const token = await t.token('car-1', secrets['car-1']!);
    const client = await connect('car-1', token);
    assert.ok(client.connected);
    await assert.rejects(t.mqtt('car-2', token), (err: any) => err.code === 4);
  });

  it('stores a QoS 1 envelope before PUBACK, on devices/{id}/messages', async () => {
    const car = await connect('car-1');
    await car.publishAsync('devices/car-1/messages', JSON.stringify({ id: 'mqtt-env-1', type: 'telemetry', body: { speed: 42 } }), { qos: 1 });
    const [m] = await stored('from=car-1&type=telemetry');
    assert.equal(m.id, 'mqtt-env-1');
    assert.deepEqual(m.body, { speed: 42 });
  });

  it('builds the envelope from devices/{id}/messages/{type} with the payload as body', async () => {
    const car = await connect('car-2');
    await car.publishAsync('devices/car-2/messages/location', JSON.stringify({ lat: 47.6, lon: -122.3 }), { qos: 1 });
    const [m] = await stored('from=car-2&type=location');
    assert.deepEqual(m.body, { lat: 47.6, lon: -122.3 });
    assert.equal(m.from, 'car-2');
  });

  it('takes an array of envelopes in one PUBLISH', async () => {
    const car = await connect('car-2');
    const batch = Array.from({ length: 5 }, (_, i) => ({ type: 'batch', body: { i } }));
    await car.publishAsync('devices/car-2/messages', JSON.stringify(batch), { qos: 1 });
    assert.deepEqual(
      (await stored('from=car-2&type=batch')).map((m: any) => m.body.i),
      [0, 1, 2, 3, 4],
    );
  });

  it('closes the connection of a device publishing as another device, and stores nothing', async () => {
    const car = await connect('car-1');
    const other = await connect('car-2');
    const gone = closed(car);
    car.publish('devices/car-2/messages/telemetry', JSON.stringify({ spoofed: true }), { qos: 1 });
    await gone;
    car.end(true);
    car.publish('devices/car-1/messages', JSON.stringify({ type: 'telemetry', from: 'car-2' }), { qos: 1 });
    assert.deepEqual(await stored('from=car-2&type=telemetry'), []);
    assert.ok(other.connected, 'other clients keep going');
    await other.publishAsync('devices/car-2/messages/ok', '{}', { qos: 1 });
  });

  it('closes the connection on malformed JSON, an invalid envelope, an oversize payload or a foreign topic', async () => {
    const bad: Array<[string, string | Buffer]> = [
      ['devices/car-1/messages', '{"type": '],
      ['devices/car-1/messages', JSON.stringify({ type: 'bad type!' })],
      ['devices/car-1/messages', JSON.stringify({ type: 't', body: 'x'.repeat(300 * 1024) })],
      ['devices/car-1/messages', JSON.stringify(Array.from({ length: 1001 }, () => ({ type: 't' })))],
      ['somewhere/else', '{}'],
    ];
    for (const [topic, payload] of bad) {
      const car = await connect('car-1');
      const gone = closed(car);
      car.publish(topic, payload, { qos: 1 });
      await gone;
    }
    const car = await connect('car-1');
    await car.publishAsync('devices/car-1/messages/still-fine', '{}', { qos: 1 });
    assert.equal((await stored('type=still-fine')).length, 1);
  });

  it('refuses subscriptions to another device with 0x80, and grants its own commands', async () => {
    const car = await connect('car-1');
    const granted = await subscribe(car, ['devices/car-1/commands/#', 'devices/car-2/messages/#', 'devices/car-2/commands/#', '#', 'other/topic']);
    assert.deepEqual(granted, [1, 128, 128, 128, 128]);
  });

  it('delivers live envelopes to an app with subscribe permission, and nothing else', async () => {
    const dash = await connect('dash');
    const nosy = await connect('nosy');
    assert.deepEqual(await subscribe(dash, 'devices/car-1/messages/#'), [1]);
    assert.deepEqual(await subscribe(nosy, 'devices/car-1/messages/#'), [128]);
    await nosy.subscribeAsync('devices/+/messages/#', { qos: 1 });
    const car1 = await connect('car-1');
    const car2 = await connect('car-2');
    const got = nextMessage(dash);
    await car1.publishAsync('devices/car-1/messages/telemetry', JSON.stringify({ rpm: 3000 }), { qos: 1 });
    const { topic, payload } = await got;
    assert.equal(topic, 'devices/car-1/messages/telemetry');
    assert.equal(payload.from, 'car-1');
    assert.deepEqual(payload.body, { rpm: 3000 });
    await car2.publishAsync('devices/car-2/messages/telemetry', '{}', { qos: 1 });
    assert.deepEqual(await collect(nosy, 300), [], 'a wildcard subscription only sees what it may');
  });

  it('delivers REST-ingested messages and batches to MQTT subscribers', async () => {
    const dash = await connect('dash');
    await dash.subscribeAsync('devices/+/messages/#', { qos: 1 });
    const token = await t.token('car-1', secrets['car-1']!);
    const got = collect(dash, 400);
    await t.api('POST', '/messages', {
      token,
      body: [
        { type: 'a', body: 1 },
        { type: 'b', body: 2 },
      ],
    });
    const car = await connect('car-1');
    await car.publishAsync(
      'devices/car-1/messages',
      JSON.stringify([
        { type: 'c', body: 3 },
        { type: 'd', body: 4 },
      ]),
      { qos: 1 },
    );
    assert.deepEqual(
      (await got).map((m) => [m.topic, m.payload.body]),
      [
        ['devices/car-1/messages/a', 1],
        ['devices/car-1/messages/b', 2],
        ['devices/car-1/messages/c', 3],
        ['devices/car-1/messages/d', 4],
      ],
    );
  });

  it('carries a command from an app to a device, and the reply back', async () => {
    const car = await connect('car-1');
    const dash = await connect('dash');
    await car.subscribeAsync('devices/car-1/commands/#', { qos: 1 });
    await dash.subscribeAsync('devices/dash/commands/#', { qos: 1 });
    const command = nextMessage(car);
    await dash.publishAsync('devices/car-1/commands/unlock', JSON.stringify({ door: 'driver' }), { qos: 1 });
    const { topic, payload } = await command;
    assert.equal(topic, 'devices/car-1/commands/unlock');
    assert.equal(payload.from, 'dash');
    assert.equal(payload.to, 'car-1');
    assert.deepEqual(payload.body, { door: 'driver' });
    const reply = nextMessage(dash);
    await car.publishAsync('devices/car-1/messages', JSON.stringify({ type: 'unlock-result', to: 'dash', responseTo: [payload.id], body: { ok: true } }), { qos: 1 });
    const answer = await reply;
    assert.equal(answer.topic, 'devices/dash/commands/unlock-result');
    assert.deepEqual(answer.payload.responseTo, [payload.id]);
    assert.equal((await stored(`type=unlock`))[0].id, payload.id, 'commands are stored too');
  });

  it('closes an app sending a command without send permission; the command is not stored', async () => {
    const nosy = await connect('nosy');
    const car = await connect('car-1');
    await car.subscribeAsync('devices/car-1/commands/#', { qos: 1 });
    const gone = closed(nosy);
    nosy.publish('devices/car-1/commands/horn', '{}', { qos: 1 });
    await gone;
    assert.deepEqual(await collect(car, 200), []);
    assert.deepEqual(await stored('type=horn'), []);
  });

  it('stops delivering to a live subscription as soon as its permission is revoked', async () => {
    const [p] = await t.register([{ type: 'app', id: 'temp-app' }]);
    const grant = await t.grant({ issuedTo: 'temp-app', principalFor: 'car-2', action: 'subscribe', authorized: true });
    const app = await connect('temp-app', p!.secret);
    await app.subscribeAsync('devices/car-2/messages/#', { qos: 1 });
    const car = await connect('car-2');
    const first = nextMessage(app);
    await car.publishAsync('devices/car-2/messages/ping', '1', { qos: 1 });
    assert.equal((await first).payload.body, 1);
    await t.api('DELETE', `/permissions/${grant}`);
    await car.publishAsync('devices/car-2/messages/ping', '2', { qos: 1 });
    assert.deepEqual(await collect(app, 300), []);
  });

  it('closes the connections of a principal disabled or given a new secret', async () => {
    const [p] = await t.register([{ type: 'device', id: 'revoked-car' }]);
    const first = await connect('revoked-car', p!.secret);
    const gone = closed(first);
    await t.api('POST', '/principals/revoked-car/secret');
    await gone;
    await assert.rejects(t.mqtt('revoked-car', p!.secret), (err: any) => err.code === 4);
    const [q] = await t.register([{ type: 'device', id: 'disabled-later' }]);
    const second = await connect('disabled-later', q!.secret);
    const alsoGone = closed(second);
    await t.api('PATCH', '/principals/disabled-later', { body: { enabled: false } });
    await alsoGone;
  });

  it('stores a QoS 2 message once, even when the client resends it as a duplicate', async () => {
    const socket = net.connect(Number(new URL(t.mqttUrl).port), '127.0.0.1');
    const replies: number[] = [];
    socket.on('data', (chunk: Buffer) => {
      for (let i = 0; i + 1 < chunk.length; i += 2 + chunk[i + 1]!) replies.push(chunk[i]!);
    });
    const waitFor = async (count: number) => {
      const end = Date.now() + 3000;
      while (replies.length < count) {
        if (Date.now() > end) throw new Error(`got ${replies.map((r) => r.toString(16))}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    socket.write(connectPacket('qos2-car', 'car-2', secrets['car-2']));
    await waitFor(1);
    const { packet, packetIdOffset } = publishTemplate('devices/car-2/messages/qos2', Buffer.from('{"n":1}'));
    packet.writeUInt16BE(7, packetIdOffset);
    packet[0] = 0x34; // PUBLISH, QoS 2
    socket.write(packet);
    await waitFor(2);
    packet[0] = 0x3c; // the same, with DUP set: the PUBREC was "lost"
    socket.write(packet);
    await waitFor(3);
    socket.write(Buffer.from([0x62, 0x02, 0x00, 0x07])); // PUBREL
    await waitFor(4);
    socket.destroy();
    assert.deepEqual(
      replies.map((r) => r.toString(16)),
      ['20', '50', '50', '70'],
      'CONNACK, PUBREC, PUBREC, PUBCOMP',
    );
    assert.equal((await stored('from=car-2&type=qos2')).length, 1);
  });

  it('retains a retained publish as its envelope, and stores it like any other', async () => {
    const car = await connect('car-2');
    await car.publishAsync('devices/car-2/messages/status', JSON.stringify({ online: true }), { qos: 1, retain: true });
    const dash = await connect('dash');
    await t.grant({ issuedTo: 'dash', principalFor: 'car-2', action: 'subscribe', authorized: true });
    const got = nextMessage(dash);
    await dash.subscribeAsync('devices/car-2/messages/status', { qos: 1 });
    const { payload, retain } = await got;
    assert.equal(retain, true);
    assert.deepEqual(payload.body, { online: true });
    assert.equal((await stored('from=car-2&type=status')).length, 1);
    await car.publishAsync('devices/car-2/messages/status', '', { qos: 1, retain: true });
    assert.equal((await stored('from=car-2&type=status')).length, 1, 'clearing a retained message stores nothing');
  });
});
