// Hardening issue, items 0 and 3: a subscriber that stops reading its socket. Before: aedes
// waited for each subscriber's socket to drain, so a stopped reader held mqemitter's 100
// delivery slots; every later delivery queued in an unbounded array, publishers matching the
// stalled subscription got no PUBACK, and when the reader vanished the queue's release recursed
// once per message and ended the process (RangeError: Maximum call stack size exceeded, from
// 5,000 queued commands on).
import assert from 'node:assert/strict';
import type { MqttClient } from 'mqtt';
import { assertServesNormalDevice } from '../helpers/abuse.js';
import { metric, waitForMetric } from '../helpers/metrics.js';
import { RawClient, SUBACK, subscribePacket } from '../helpers/mqtt-raw.js';
import { startServer, type TestServer } from '../helpers/server.js';

/** A raw client subscribed to `filter` at QoS 1 that then stops reading its socket. */
async function stalledSubscriber(t: TestServer, id: string, secret: string, filter: string): Promise<RawClient> {
  const { client, code } = await RawClient.open(t.mqttUrl, { clientId: `${id}-stalled`, username: id, password: secret });
  assert.equal(code, 0);
  client.send(subscribePacket(1, [{ topic: filter, qos: 1 }]));
  const suback = await client.next((p) => p.type === SUBACK);
  assert.equal(suback?.body[2], 1, 'subscription granted at QoS 1');
  client.stopReading();
  return client;
}

/** Counts the messages `client` receives on topics starting with `prefix`. */
function counter(client: MqttClient, prefix: string): { count: number; reached(n: number): Promise<void> } {
  const state = { count: 0, waiters: [] as Array<[number, () => void]> };
  client.on('message', (topic) => {
    if (!topic.startsWith(prefix)) return;
    state.count++;
    state.waiters = state.waiters.filter(([n, resolve]) => (state.count >= n ? (resolve(), false) : true));
  });
  return {
    get count() {
      return state.count;
    },
    reached: (n) => new Promise((resolve) => (state.count >= n ? resolve() : state.waiters.push([n, resolve]))),
  };
}

/**
 * A stalled subscriber S and a normal one N on a device's messages; the device publishes
 * `count` QoS 1 messages of `bytes` each. Every PUBACK arrives, N receives every message, and S
 * is disconnected.
 */
async function publishPastAStalledReader(t: TestServer, tag: string, count: number, bytes: number): Promise<void> {
  const [device, watcher, stalled] = await t.register([
    { type: 'device', id: `${tag}-car` },
    { type: 'app', id: `${tag}-watcher` },
    { type: 'app', id: `${tag}-stalled` },
  ]);
  for (const app of [watcher!, stalled!]) await t.grant({ issuedTo: app.id, principalFor: device!.id, action: 'subscribe', authorized: true });
  const filter = `devices/${device!.id}/messages/#`;
  const s = await stalledSubscriber(t, stalled!.id, stalled!.secret, filter);
  const n = await t.mqtt(watcher!.id, watcher!.secret);
  const car = await t.mqtt(device!.id, device!.secret);
  try {
    await n.subscribeAsync(filter, { qos: 1 });
    const received = counter(n, `devices/${device!.id}/messages/`);
    const before = await metric(t, 'nitrogen_mqtt_slow_readers_disconnected_total');
    const body = JSON.stringify({ pad: 'x'.repeat(bytes) });
    // One at a time, as a device publishes: each PUBACK arrives although S reads none of it.
    for (let i = 0; i < count; i++) await car.publishAsync(`devices/${device!.id}/messages/telemetry`, body, { qos: 1 });
    await received.reached(count);
    assert.equal(received.count, count, 'the reading subscriber got every message');
    await waitForMetric(t, 'nitrogen_mqtt_slow_readers_disconnected_total', (v) => v > before);
    assert.ok((await metric(t, 'nitrogen_mqtt_limit_hits_total', { limit: 'maxBufferedBytes' })) >= 1);
  } finally {
    s.destroy();
    await Promise.all([n.endAsync(), car.endAsync()]);
  }
}

// The per-principal ingestion quota alone would stop these devices after 2,000 commands; it is
// lifted here so that what is tested is the MQTT side: buffers, queues and the broker's recursion.
const NO_QUOTA = { quota: { messages: { perSecond: 1e6, burst: 1e6 }, bytes: { perSecond: 1e10, burst: 1e10 } } };

describe('abuse: MQTT readers that stop reading', function () {
  describe('with the defaults', () => {
    let t: TestServer;
    before(async () => (t = await startServer(NO_QUOTA)));
    after(() => t.stop());

    it('item 0: a device with no permission queues thousands of commands for its stalled subscription and vanishes; the server lives', async () => {
      const [device] = await t.register([{ type: 'device', id: 'item0-car' }]);
      const s = await stalledSubscriber(t, device!.id, device!.secret, `devices/${device!.id}/commands/#`);
      const token = await t.token(device!.id, device!.secret);
      for (let batch = 0; batch < 6; batch++) {
        const commands = Array.from({ length: 1000 }, (_, i) => ({ type: 'ping', to: device!.id, body: { batch, i, pad: 'x'.repeat(100) } }));
        const res = await t.api('POST', '/messages', { token, body: commands });
        assert.equal(res.status, 201);
      }
      s.destroy();
      await waitForMetric(t, 'nitrogen_mqtt_connections', (v) => v === 0);
      await assertServesNormalDevice(t);
    });

    it('item 3: a reader that stops is cut off after its grace period while another subscriber receives everything', async function () {
      this.timeout(60_000);
      // 24 MB: past the kernel's socket buffers and the 1 MiB cap; then the 5 s grace.
      await publishPastAStalledReader(t, 'item3d', 120, 200 * 1024);
      await assertServesNormalDevice(t);
    });
  });

  describe('with a small buffer cap', () => {
    let t: TestServer;
    before(
      async () =>
        (t = await startServer({
          ...NO_QUOTA,
          plugins: [
            { use: 'mqtt', options: { port: 0, maxBufferedBytes: 64 * 1024, slowReaderGrace: '200ms' } },
            { use: 'rest', options: { port: 0 } },
          ],
        })),
    );
    after(() => t.stop());

    it('item 3: a stalled subscriber blocks neither the publisher nor the other subscribers, and is disconnected', async () => {
      await publishPastAStalledReader(t, 'item3', 400, 20 * 1024);
      await assertServesNormalDevice(t);
    });

    it('item 0: thousands of commands for a stalled reader that vanishes mid-flood leave the server serving', async () => {
      const [device] = await t.register([{ type: 'device', id: 'item0s-car' }]);
      const s = await stalledSubscriber(t, device!.id, device!.secret, `devices/${device!.id}/commands/#`);
      const token = await t.token(device!.id, device!.secret);
      const posts = Array.from({ length: 6 }, (_, batch) => t.api('POST', '/messages', { token, body: Array.from({ length: 1000 }, (_, i) => ({ type: 'ping', to: device!.id, body: { batch, i } })) }));
      s.destroy();
      for (const res of await Promise.all(posts)) assert.equal(res.status, 201);
      await assertServesNormalDevice(t);
    });
  });
});
