// Hardening issue, items 15 and 16, and the packet and subscription caps: what a peer speaking
// MQTT badly, or hugely, gets back. Before: every refused CONNECT wrote an info line (an
// unauthenticated flood filled the log); an empty client id with clean session 0 was accepted;
// an unknown protocol level was closed without CONNACK 1; a QoS 1 PUBLISH with packet id 0 was
// accepted; a packet could announce 256 MiB and be buffered whole, before authentication too.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { defaultCatalog } from '../../catalog.js';
import { createServer } from '../../core/server.js';
import { assertServesNormalDevice } from '../helpers/abuse.js';
import { metric } from '../helpers/metrics.js';
import { CONNACK, PUBACK, RawClient, SUBACK, UNSUBACK, publishPacket, remainingLength, subscribePacket, unsubscribePacket, utf8 } from '../helpers/mqtt-raw.js';
import { ADMIN_SECRET, TestServer, startServer } from '../helpers/server.js';
import { tempDir } from '../helpers/temp.js';

const UNLIMITED_FAILURES = { perPrincipal: { failures: 1_000_000, per: '1m' }, perAddress: { failures: 1_000_000, per: '1m' } };

/** A server on port 0 whose log lines (pino JSON, level info and up) are kept in `lines`. */
async function startLoggedServer(lines: Array<{ level: number; msg: string }>, mqtt: Record<string, unknown> = {}): Promise<TestServer> {
  const dir = tempDir();
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line));
      done();
    },
  });
  const server = createServer(
    // Failed logins are rate-limited per principal and address (identity-login-limits.test.ts);
    // lifted here, where many refusals are the point and each must get its own return code.
    {
      host: '127.0.0.1',
      adminSecret: ADMIN_SECRET,
      dataDir: dir.path,
      credentials: UNLIMITED_FAILURES,
      plugins: [
        { use: 'mqtt', options: { port: 0, ...mqtt } },
        { use: 'rest', options: { port: 0 } },
      ],
    },
    { catalog: defaultCatalog, logger: pino({ level: 'info' }, sink) },
  );
  await server.start();
  const t = new TestServer(server, dir.path, dir.remove);
  t.adminToken = await t.token('admin', ADMIN_SECRET);
  return t;
}

describe('abuse: MQTT protocol strictness and packet caps', function () {
  let t: TestServer;
  let secret: string;
  const lines: Array<{ level: number; msg: string }> = [];
  const open: RawClient[] = [];

  before(async () => {
    t = await startLoggedServer(lines);
    secret = (await t.register([{ type: 'device', id: 'strict-car' }]))[0]!.secret;
  });
  afterEach(() => {
    for (const c of open.splice(0)) c.destroy();
  });
  after(() => t.stop());

  async function raw(options: Parameters<typeof RawClient.open>[1]) {
    const result = await RawClient.open(t.mqttUrl, options);
    open.push(result.client);
    return result;
  }

  it('item 15: refused CONNECTs are counted in a metric and not logged at info', async () => {
    const before = await metric(t, 'nitrogen_mqtt_connects_refused_total', { reason: 'credentials' });
    const logged = lines.length;
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => raw({ clientId: `flood-${i}`, username: 'strict-car', password: 'wrong' })));
    assert.deepEqual([...new Set(results.map((r) => r.code))], [4]);
    await Promise.all(results.map((r) => r.client.closed));
    assert.equal(await metric(t, 'nitrogen_mqtt_connects_refused_total', { reason: 'credentials' }), before + 50);
    assert.deepEqual(
      lines.slice(logged).filter((l) => /connect/i.test(l.msg)),
      [],
      'no log line for them at info or above',
    );
    await assertServesNormalDevice(t);
  });

  it('item 16: an empty client id with clean session 0 gets CONNACK 2 [MQTT-3.1.3-8]', async () => {
    const persistent = await raw({ clientId: '', clean: false, username: 'strict-car', password: secret });
    assert.equal(persistent.code, 2);
    await persistent.client.closed;
    assert.equal((await raw({ clientId: '', clean: true, username: 'strict-car', password: secret })).code, 0, 'with clean session 1 the server names it');
    await assertServesNormalDevice(t);
  });

  it('item 16: an unsupported protocol level gets CONNACK 1, then the connection closes [MQTT-3.1.2-2]', async () => {
    for (const protocolLevel of [0, 2, 5, 6, 127, 255]) {
      const { client, code } = await raw({ clientId: `level-${protocolLevel}`, protocolLevel, username: 'strict-car', password: secret });
      assert.equal(code, 1, `level ${protocolLevel}`);
      await client.closed;
    }
    assert.ok((await metric(t, 'nitrogen_mqtt_connects_refused_total', { reason: 'protocol' })) >= 6);
    await assertServesNormalDevice(t);
  });

  it('item 16: a QoS 1 or 2 PUBLISH with packet id 0 closes the connection and stores nothing [MQTT-2.3.1-1]', async () => {
    for (const qos of [1, 2] as const) {
      const { client, code } = await raw({ clientId: `zero-id-${qos}`, username: 'strict-car', password: secret });
      assert.equal(code, 0);
      client.send(publishPacket({ topic: 'devices/strict-car/messages/zero', payload: '{}', qos, packetId: 0 }));
      await client.closed;
    }
    const { client } = await raw({ clientId: 'one-id', username: 'strict-car', password: secret });
    client.send(publishPacket({ topic: 'devices/strict-car/messages/one', payload: '{}', qos: 1, packetId: 1 }));
    assert.ok(await client.next((p) => p.type === PUBACK));
    assert.equal((await t.api('GET', '/messages?from=strict-car&type=zero')).body.messages.length, 0);
    await assertServesNormalDevice(t);
  });

  it('closes a connection whose packet before the CONNACK is over maxConnectBytes, without reading it whole', async () => {
    const big = await raw({ clientId: 'big', username: 'strict-car', password: 'x'.repeat(60 * 1024), will: { topic: 'devices/strict-car/messages/will', payload: 'x'.repeat(60 * 1024) } });
    assert.equal(big.code, undefined, 'no CONNACK: closed');
    // A CONNECT announcing 200 MiB: closed after its first bytes, not after 200 MiB.
    const announced = await RawClient.connect(t.mqttUrl);
    open.push(announced);
    announced.send(Buffer.concat([Buffer.from([0x10]), remainingLength(200 * 1024 * 1024), utf8('MQTT'), Buffer.from([4, 2, 0, 60])]));
    await announced.closed;
    assert.equal(announced.received.filter((p) => p.type === CONNACK).length, 0);
    assert.ok((await metric(t, 'nitrogen_mqtt_limit_hits_total', { limit: 'maxConnectBytes' })) >= 2);
    await assertServesNormalDevice(t);
  });

  it('counts connections before any CONNECT against maxConnections', async () => {
    const few = await startServer({
      plugins: [
        { use: 'mqtt', options: { port: 0, maxConnections: 2 } },
        { use: 'rest', options: { port: 0 } },
      ],
    });
    try {
      const idle = [await RawClient.connect(few.mqttUrl), await RawClient.connect(few.mqttUrl)];
      open.push(...idle);
      const third = await RawClient.connect(few.mqttUrl);
      open.push(third);
      await third.closed;
      assert.equal(await metric(few, 'nitrogen_mqtt_connects_refused_total', { reason: 'unavailable' }), 1);
      for (const c of idle) c.destroy();
      // Places free up once the server has seen those sockets close: wait until a CONNECT is
      // answered (a refusal, after which the server has closed the probe itself).
      for (;;) {
        const probe = await RawClient.open(few.mqttUrl, { clientId: 'probe', username: 'nobody', password: 'wrong' });
        probe.client.destroy();
        if (probe.code !== undefined) break;
      }
      await assertServesNormalDevice(few);
    } finally {
      await few.stop();
    }
  });

  describe('with small caps', () => {
    let small: TestServer;
    let smallSecret: string;
    before(async () => {
      small = await startServer({
        plugins: [
          { use: 'mqtt', options: { port: 0, maxPacketBytes: 8 * 1024, maxSubscriptions: 3 } },
          { use: 'rest', options: { port: 0 } },
        ],
      });
      smallSecret = (await small.register([{ type: 'device', id: 'capped' }]))[0]!.secret;
    });
    after(() => small.stop());

    it('closes a connection that sends a packet over maxPacketBytes', async () => {
      const { client } = await RawClient.open(small.mqttUrl, { clientId: 'capped-1', username: 'capped', password: smallSecret });
      open.push(client);
      client.send(publishPacket({ topic: 'devices/capped/messages/ok', payload: JSON.stringify({ pad: 'x'.repeat(4 * 1024) }), qos: 1, packetId: 1 }));
      assert.ok(await client.next((p) => p.type === PUBACK));
      client.send(publishPacket({ topic: 'devices/capped/messages/big', payload: JSON.stringify({ pad: 'x'.repeat(10 * 1024) }), qos: 1, packetId: 2 }));
      await client.closed;
      assert.equal(client.received.filter((p) => p.type === PUBACK).length, 1);
      assert.equal((await small.api('GET', '/messages?from=capped&type=big')).body.messages.length, 0);
      await assertServesNormalDevice(small);
    });

    it('refuses subscriptions beyond maxSubscriptions with 0x80; an unsubscribe frees a place', async () => {
      const { client } = await RawClient.open(small.mqttUrl, { clientId: 'capped-2', username: 'capped', password: smallSecret });
      open.push(client);
      const filters = ['a', 'b', 'c', 'd', 'e'].map((type) => ({ topic: `devices/capped/messages/${type}`, qos: 1 as const }));
      client.send(subscribePacket(1, filters));
      const suback = await client.next((p) => p.type === SUBACK);
      assert.deepEqual([...suback!.body.subarray(2)], [1, 1, 1, 0x80, 0x80]);
      client.send(subscribePacket(2, [filters[0]!])); // already held: not one more
      assert.deepEqual([...(await client.next((p) => p.type === SUBACK && p.body.readUInt16BE(0) === 2))!.body.subarray(2)], [1]);
      client.send(unsubscribePacket(3, [filters[0]!.topic]));
      await client.next((p) => p.type === UNSUBACK);
      client.send(subscribePacket(4, [filters[3]!]));
      assert.deepEqual([...(await client.next((p) => p.type === SUBACK && p.body.readUInt16BE(0) === 4))!.body.subarray(2)], [1]);
      await assertServesNormalDevice(small);
    });
  });
});
