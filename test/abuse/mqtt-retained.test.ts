// Hardening issue, item 7: retained messages had no cap per principal. 1,000 retained
// publishes of 200 KiB on distinct types took 460 MiB until the server restarted.
import assert from 'node:assert/strict';
import type { MqttClient } from 'mqtt';
import { assertServesNormalDevice } from '../helpers/abuse.js';
import { metric } from '../helpers/metrics.js';
import { ADMIN_SECRET, startServer, type TestServer } from '../helpers/server.js';

function closed(client: MqttClient): Promise<void> {
  return new Promise((resolve) => (client.connected ? client.once('close', () => resolve()) : resolve()));
}

describe('abuse: MQTT retained messages per principal', function () {
  let t: TestServer;

  before(async () => {
    t = await startServer({
      plugins: [
        { use: 'mqtt', options: { port: 0, maxRetainedMessages: 3, maxRetainedBytes: 16 * 1024 } },
        { use: 'rest', options: { port: 0 } },
      ],
    });
  });
  after(() => t.stop());

  /** The types of `device`'s retained messages, as a new subscriber receives them. */
  async function retainedTypes(device: string): Promise<string[]> {
    const client = await t.mqtt('admin', ADMIN_SECRET);
    const types: string[] = [];
    const marker = new Promise<void>((resolve) => {
      client.on('message', (_topic, payload, packet) => {
        const envelope = JSON.parse(payload.toString());
        if (packet.retain) types.push(envelope.type);
        else if (envelope.type === 'marker') resolve();
      });
    });
    await client.subscribeAsync(`devices/${device}/messages/#`, { qos: 1 });
    // Retained messages are sent right after the SUBACK; a live message published later comes after them.
    const res = await t.api('POST', '/messages', { token: await t.token(device, secrets[device]!), body: { type: 'marker', body: {} } });
    assert.equal(res.status, 201);
    await marker;
    await client.endAsync();
    return types.sort();
  }

  const secrets: Record<string, string> = {};
  async function register(id: string): Promise<void> {
    secrets[id] = (await t.register([{ type: 'device', id }]))[0]!.secret;
  }
  async function device(id: string): Promise<MqttClient> {
    if (!secrets[id]) await register(id);
    return t.mqtt(id, secrets[id]!);
  }
  const stored = async (from: string, type: string) => (await t.api('GET', `/messages?from=${from}&type=${type}`)).body.messages.length;

  it('item 7: refuses a retained message beyond maxRetainedMessages, closing the connection; nothing is stored', async () => {
    let car = await device('ret-count');
    for (const type of ['a', 'b', 'c']) await car.publishAsync(`devices/ret-count/messages/${type}`, '{"v":1}', { qos: 1, retain: true });
    await car.publishAsync('devices/ret-count/messages/a', '{"v":2}', { qos: 1, retain: true }); // replaces a
    const rejectedBefore = await metric(t, 'nitrogen_messages_rejected_total', { transport: 'mqtt', code: 'NITROGEN_ERR_QUOTA_EXCEEDED' });
    const gone = closed(car);
    car.publish('devices/ret-count/messages/d', '{"v":1}', { qos: 1, retain: true });
    await gone;
    assert.equal(await metric(t, 'nitrogen_messages_rejected_total', { transport: 'mqtt', code: 'NITROGEN_ERR_QUOTA_EXCEEDED' }), rejectedBefore + 1);
    assert.equal(await stored('ret-count', 'd'), 0);
    assert.deepEqual(await retainedTypes('ret-count'), ['a', 'b', 'c']);

    // Clearing one frees its place [MQTT-3.3.1-10].
    car = await device('ret-count');
    await car.publishAsync('devices/ret-count/messages/b', '', { qos: 1, retain: true });
    await car.publishAsync('devices/ret-count/messages/d', '{"v":1}', { qos: 1, retain: true });
    await car.endAsync();
    assert.deepEqual(await retainedTypes('ret-count'), ['a', 'c', 'd']);
    await assertServesNormalDevice(t);
  });

  it('item 7: refuses retained envelopes beyond maxRetainedBytes, a whole batch at once', async () => {
    let car = await device('ret-bytes');
    const big = JSON.stringify({ pad: 'x'.repeat(9 * 1024) });
    await car.publishAsync('devices/ret-bytes/messages/a', big, { qos: 1, retain: true });
    let gone = closed(car);
    car.publish('devices/ret-bytes/messages/b', big, { qos: 1, retain: true });
    await gone;
    assert.equal(await stored('ret-bytes', 'b'), 0);

    car = await device('ret-bytes');
    gone = closed(car);
    const batch = [
      { type: 'c', body: { v: 1 } },
      { type: 'e', body: { pad: 'x'.repeat(8 * 1024) } },
    ];
    car.publish('devices/ret-bytes/messages', JSON.stringify(batch), { qos: 1, retain: true });
    await gone;
    assert.equal(await stored('ret-bytes', 'c'), 0, 'nothing of the batch is stored');
    assert.deepEqual(await retainedTypes('ret-bytes'), ['a']);
    await assertServesNormalDevice(t);
  });

  it("a deleted principal's retained messages go with it", async () => {
    const car = await device('ret-deleted');
    await car.publishAsync('devices/ret-deleted/messages/status', '{"on":true}', { qos: 1, retain: true });
    await car.endAsync();
    assert.deepEqual(await retainedTypes('ret-deleted'), ['status']);
    assert.equal((await t.api('DELETE', '/principals/ret-deleted')).status, 204);
    await register('ret-deleted');
    assert.deepEqual(await retainedTypes('ret-deleted'), []);
    await assertServesNormalDevice(t);
  });
});
