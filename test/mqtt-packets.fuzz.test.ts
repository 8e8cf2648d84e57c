// Fuzzing the MQTT packet path over real sockets: random and mutated CONNECT, SUBSCRIBE,
// PUBLISH (and the other packets a client sends) against a live server. Whatever arrives, the
// server answers, refuses or closes; it never crashes, never keeps a connection the peer has
// ended, and keeps serving a normal device. `npm run fuzz` runs many more cases with a fresh seed.
import assert from 'node:assert/strict';
import { assertServesNormalDevice } from './helpers/abuse.js';
import { Random, fuzzCases, fuzzSeed, withSeed } from './helpers/fuzz.js';
import { metric, waitForMetric } from './helpers/metrics.js';
import { CONNACK, DISCONNECT, PINGREQ, PINGRESP, PUBACK, RawClient, SUBACK, type ReceivedPacket, connectPacket, pubackPacket, publishPacket, remainingLength, subscribePacket, unsubscribePacket } from './helpers/mqtt-raw.js';
import { startServer, type TestServer } from './helpers/server.js';

const ID = 'fuzz-car';
const TOPICS = [
  `devices/${ID}/messages`,
  `devices/${ID}/messages/telemetry`,
  `devices/${ID}/commands/reboot`,
  'devices/other-car/messages/x',
  'devices/other-car/commands/open',
  'devices/admin/commands/x',
  `devices/${ID}`,
  '$SYS/x',
  'a/b',
  '',
  '/',
  'devices//messages/x',
  `devices/${ID}/messages/${'t'.repeat(70)}`,
  `devices/${ID}/messages/a/b/c`,
];
const FILTERS = ['#', '+', 'devices/#', `devices/${ID}/#`, `devices/${ID}/commands/#`, 'devices/+/messages/+', 'devices/other-car/#', '$SYS/#', '', 'a/#/b', 'devices/+/+/#'];

/** A packet of a kind a client sends, with fields drawn from what is valid and what is not. */
function randomPacket(r: Random, secret: string): Buffer {
  switch (r.int(9)) {
    case 0:
      return connectPacket({
        clientId: r.pick(['', 'fuzz-client', `fuzz-${r.int(1000)}`, 'x'.repeat(r.int(300))]),
        clean: r.next() < 0.7,
        username: r.pick([ID, 'other-car', 'admin', undefined]),
        password: r.pick([secret, 'wrong', undefined, 'eyJ.a.b']),
        protocolLevel: r.pick([4, 4, 4, 3, 5, 0, 255]),
        keepalive: r.pick([0, 1, 60, 65535]),
        will: r.next() < 0.3 ? { topic: r.pick(TOPICS), payload: randomPayload(r).toString(), qos: r.pick([0, 1] as const), retain: r.next() < 0.5 } : undefined,
      });
    case 1:
      return subscribePacket(
        r.int(3) === 0 ? 0 : 1 + r.int(65535),
        Array.from({ length: 1 + r.int(4) }, () => ({ topic: r.pick(FILTERS), qos: r.pick([0, 1, 2] as const) })),
      );
    case 2:
    case 3:
    case 4:
      return publishPacket({ topic: r.pick(TOPICS), payload: randomPayload(r), qos: r.pick([0, 1, 2] as const), packetId: r.int(4) === 0 ? 0 : 1 + r.int(65535), retain: r.next() < 0.3, dup: r.next() < 0.1 });
    case 5:
      return unsubscribePacket(1 + r.int(65535), [r.pick(FILTERS)]);
    case 6:
      return r.pick([pubackPacket(r.int(65536)), Buffer.from([0x62, 0x02, r.int(256), r.int(256)]), PINGREQ, DISCONNECT]);
    case 7:
      // A fixed header claiming far more than follows.
      return Buffer.concat([Buffer.from([r.int(256)]), remainingLength(r.int(2 ** 28)), r.bytes(r.int(32))]);
    default:
      return r.bytes(1 + r.int(64));
  }
}

function randomPayload(r: Random): Buffer {
  switch (r.int(6)) {
    case 0:
      return Buffer.from(JSON.stringify({ speed: r.int(200) }));
    case 1:
      return Buffer.from(JSON.stringify({ type: r.pick(['telemetry', 'x'.repeat(70), 'ok', '']), to: r.pick([undefined, 'other-car', 'admin', ID]), body: { n: r.int(10) } }));
    case 2:
      return Buffer.from(JSON.stringify(Array.from({ length: r.int(5) }, (_, i) => ({ type: 'batch', body: i, ...(r.next() < 0.2 ? { from: 'other-car' } : {}) }))));
    case 3:
      return Buffer.from('{"unterminated": ');
    case 4:
      return Buffer.alloc(0);
    default:
      return r.bytes(r.int(128));
  }
}

/** PINGREQs after fuzzed packets: they complete a packet a mutation left a little short. */
const filler = (n: number) => Buffer.concat(Array.from({ length: n }, () => PINGREQ));
/** A SUBSCRIBE whose SUBACK says the server has acted on everything sent before it. */
const MARKER_ID = 65535;
const MARKER = subscribePacket(MARKER_ID, [{ topic: `devices/${ID}/commands/marker`, qos: 0 }]);

/** Resolves when `reply` arrives or the connection closes; after a second at most (see below). */
async function settle(client: RawClient, reply: (p: ReceivedPacket) => boolean): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([client.next(reply), new Promise((resolve) => (timer = setTimeout(resolve, 1000)))]);
  clearTimeout(timer);
}

/**
 * One connection: a CONNECT (usually valid), then, once it is answered, a few packets; any of
 * them may be mutated. The server has acted on every packet once it answers what follows them
 * (a PINGREQ, the marker SUBSCRIBE), or it has closed the connection. A sequence that leaves a
 * long packet unfinished gets neither: the fuzzer ends that connection after a second, and the
 * server must then forget it.
 */
async function fuzzConnection(t: TestServer, r: Random, secret: string): Promise<RawClient> {
  let first = connectPacket({ clientId: `fuzz-${r.int(50)}`, username: ID, password: secret, clean: r.next() < 0.8, keepalive: 60 });
  if (r.next() < 0.2) first = randomPacket(r, secret);
  if (r.next() < 0.3) first = r.mutate(first);
  const client = await RawClient.connect(t.mqttUrl);
  client.send(Buffer.concat([first, filler(40)]));
  await settle(client, (p) => p.type === PINGRESP);
  if (client.isOpen && client.received.some((p) => p.type === PINGRESP)) {
    const rest = Array.from({ length: r.int(5) }, () => randomPacket(r, secret)).map((p) => (r.next() < 0.3 ? r.mutate(p) : p));
    // Often a well-formed publish too, somewhere among them: the fuzz reaches the commit path.
    if (r.next() < 0.5) rest.splice(r.int(rest.length + 1), 0, publishPacket({ topic: `devices/${ID}/messages/telemetry`, payload: '{"ok":true}', qos: 1, packetId: 1 + r.int(65535) }));
    client.send(Buffer.concat([...rest, filler(512), MARKER]));
    await settle(client, (p) => p.type === SUBACK && p.body.readUInt16BE(0) === MARKER_ID);
    // aedes handles the packets of one read together and reads on once all are done (a PUBLISH
    // once committed): a PINGREQ sent now is answered after every PUBACK of those.
    if (client.isOpen && client.received.some((p) => p.type === SUBACK && p.body.readUInt16BE(0) === MARKER_ID)) {
      const pongs = client.received.filter((p) => p.type === PINGRESP).length;
      client.send(PINGREQ);
      await settle(client, () => client.received.filter((p) => p.type === PINGRESP).length > pongs);
    }
  }
  client.destroy();
  await client.closed;
  return client;
}

describe('fuzz: MQTT packets over real sockets', function () {
  let t: TestServer;
  let secret: string;

  before(async () => {
    // Mutated CONNECTs fail logins by the hundred: the login limits (tested on their own in
    // identity-login-limits.test.ts) are lifted so each case reaches the packet path it fuzzes.
    const credentials = { perPrincipal: { failures: 1_000_000, per: '1m' }, perAddress: { failures: 1_000_000, per: '1m' } };
    t = await startServer({
      credentials,
      plugins: [
        { use: 'mqtt', options: { port: 0, maxSessions: 3, maxSubscriptions: 5, maxPacketBytes: 64 * 1024 } },
        { use: 'rest', options: { port: 0 } },
      ],
    });
    [{ secret }] = (await t.register([
      { type: 'device', id: ID },
      { type: 'device', id: 'other-car' },
    ])) as [{ id: string; secret: string }];
  });
  after(() => t.stop());

  it('answers, refuses or closes every random and mutated packet sequence, and keeps serving', async function () {
    this.timeout(0);
    const random = new Random(fuzzSeed(0x6d717474));
    const cases = fuzzCases(200);
    let accepted = 0;
    let acknowledged = 0;
    for (let done = 0; done < cases; done += 10) {
      const batch = await Promise.all(Array.from({ length: Math.min(10, cases - done) }, () => fuzzConnection(t, random, secret)));
      for (const client of batch) {
        if (client.received.some((p) => p.type === CONNACK && p.body[1] === 0)) accepted++;
        if (client.received.some((p) => p.type === PUBACK)) acknowledged++;
      }
      if (done % 100 === 0) await withSeed(random, () => assertServesNormalDevice(t));
    }
    await withSeed(random, async () => {
      // Every connection the fuzzer ended is gone on the server too.
      await waitForMetric(t, 'nitrogen_mqtt_connections', (v) => v === 0);
      await assertServesNormalDevice(t);
      // The fuzzer reached past the door: enough sessions were accepted and published.
      assert.ok(accepted > cases / 4, `only ${accepted} of ${cases} connections were accepted`);
      assert.ok(acknowledged > 0, `no PUBLISH was acknowledged (${accepted} accepted)`);
      assert.ok((await metric(t, 'nitrogen_mqtt_connects_refused_total', { reason: 'credentials' })) > 0);
    });
  });
});
