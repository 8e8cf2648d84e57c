// Issue: no per-principal quota on ingestion (690 MB to disk in 20 s from one device). Each
// sender now has an allowance of messages and bytes per second with a burst. Over REST the
// excess is refused (429 + Retry-After); over MQTT, which has no negative PUBACK, the
// acknowledgements are held back to the quota's rate, and a sender that would have to be held
// longer than `quota.maxDelay` is disconnected.
import assert from 'node:assert/strict';
import type { MqttClient } from 'mqtt';
import { assertServesNormalDevice } from '../helpers/abuse.js';
import { startServer, type TestServer } from '../helpers/server.js';

const RATE = 20;
const BURST = 20;
const quota = { messages: { perSecond: RATE, burst: BURST }, bytes: { perSecond: 64 * 1024, burst: 300 * 1024 }, maxDelay: '2s' };

let serial = 0;

describe('abuse: per-principal ingestion quota', () => {
  let t: TestServer;
  before(async () => (t = await startServer({ quota })));
  after(() => t.stop());

  async function device(): Promise<{ id: string; secret: string; token: string }> {
    const [d] = await t.register([{ type: 'device', id: `quota-car-${++serial}` }]);
    return { ...d!, token: await t.token(d!.id, d!.secret) };
  }

  async function stored(id: string): Promise<number> {
    const res = await t.api('GET', `/messages?from=${id}&limit=1000`);
    return res.body.messages.length;
  }

  it('refuses REST messages beyond the burst with 429, Retry-After and the limit that was hit', async () => {
    const car = await device();
    const burst = Array.from({ length: BURST }, (_, i) => ({ type: 'telemetry', body: { i } }));
    assert.equal((await t.api('POST', '/messages', { token: car.token, body: burst })).status, 201);
    // A second full burst: it would fit only after a whole second of refill, so a slow machine
    // (tens of milliseconds between the two requests) does not make room for it.
    const over = await t.api('POST', '/messages', { token: car.token, body: burst });
    assert.equal(over.status, 429);
    assert.equal(over.body.error.code, 'NITROGEN_ERR_QUOTA_EXCEEDED');
    assert.equal(over.body.error.details.limit, 'quota.messages');
    assert.ok(Number(over.headers.get('retry-after')) >= 1);
    assert.equal(await stored(car.id), BURST, 'nothing of a refused request is stored');
    await assertServesNormalDevice(t);
  });

  it('counts bytes too', async () => {
    const car = await device();
    const big = { type: 'telemetry', body: { blob: 'x'.repeat(200 * 1024) } };
    assert.equal((await t.api('POST', '/messages', { token: car.token, body: big })).status, 201);
    const over = await t.api('POST', '/messages', { token: car.token, body: big });
    assert.equal(over.status, 429);
    assert.equal(over.body.error.details.limit, 'quota.bytes');
    await assertServesNormalDevice(t);
  });

  it('tells a REST client whose batch can never fit to send smaller ones, without Retry-After', async () => {
    const car = await device();
    const batch = Array.from({ length: BURST + 1 }, (_, i) => ({ type: 'telemetry', body: { i } }));
    const res = await t.api('POST', '/messages', { token: car.token, body: batch });
    assert.equal(res.status, 429);
    assert.match(res.body.error.message, /send smaller batches/);
    assert.equal(res.headers.get('retry-after'), null);
    await assertServesNormalDevice(t);
  });

  it("holds MQTT acknowledgements back to the quota's rate, and loses nothing", async () => {
    const car = await device();
    const client = await t.mqtt(car.id, car.secret);
    try {
      const count = BURST + 2 * RATE; // two seconds' worth beyond the burst, within maxDelay
      const started = performance.now();
      await Promise.all(Array.from({ length: count }, (_, i) => client.publishAsync(`devices/${car.id}/messages/telemetry`, JSON.stringify({ i }), { qos: 1 })));
      const elapsed = performance.now() - started;
      // The last acknowledgement waits for the allowance the excess needs: 40 / 20 per second.
      assert.ok(elapsed >= 1800, `all ${count} acknowledged after ${elapsed.toFixed(0)} ms`);
      assert.equal(await stored(car.id), count);
    } finally {
      await client.endAsync();
    }
    await assertServesNormalDevice(t);
  });

  it('disconnects an MQTT sender that would have to be held back longer than maxDelay', async () => {
    const car = await device();
    const client: MqttClient = await t.mqtt(car.id, car.secret);
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    let acknowledged = 0;
    for (let i = 0; i < 200; i++) {
      client.publish(`devices/${car.id}/messages/telemetry`, JSON.stringify({ i }), { qos: 1 }, (err) => {
        if (!err) acknowledged++;
      });
    }
    await closed;
    client.end(true);
    const kept = await stored(car.id);
    // At most the burst plus what maxDelay allows to be held (plus what refilled meanwhile).
    assert.ok(acknowledged < 200, `${acknowledged} acknowledged`);
    assert.ok(kept >= acknowledged, 'every acknowledged message is stored');
    assert.ok(kept <= BURST + 2 * RATE + 10, `${kept} stored`);
    const metrics = (await t.api('GET', '/metrics')).body as string;
    assert.match(metrics, /nitrogen_messages_rejected_total\{transport="mqtt",code="NITROGEN_ERR_QUOTA_EXCEEDED"\} [1-9]/);
    await assertServesNormalDevice(t);
  });
});
