// Hardening issue, item 4: MQTT client ids were not bound to principals. A device connecting
// with another device's client id disconnected it, took over its persistent session and threw
// away the QoS 1 commands queued for it; with a clean session it wiped the victim's
// subscriptions. Also the caps the fix rests on: persistent sessions per principal and the
// queue of each.
import assert from 'node:assert/strict';
import { assertServesNormalDevice } from '../helpers/abuse.js';
import { waitForMetric } from '../helpers/metrics.js';
import { PUBLISH, RawClient, SUBACK, subscribePacket, type ConnectOptions } from '../helpers/mqtt-raw.js';
import { startServer, type TestServer } from '../helpers/server.js';

describe('abuse: MQTT client ids and persistent sessions', function () {
  let t: TestServer;
  const secrets: Record<string, string> = {};
  const open: RawClient[] = [];

  before(async () => {
    t = await startServer({
      plugins: [
        { use: 'mqtt', options: { port: 0, maxSessions: 2, maxQueuedMessages: 5 } },
        { use: 'rest', options: { port: 0 } },
      ],
    });
    for (const p of await t.register([
      { type: 'device', id: 'victim' },
      { type: 'device', id: 'thief' },
      { type: 'app', id: 'ops' },
      { type: 'device', id: 'many' },
      { type: 'device', id: 'queued' },
    ]))
      secrets[p.id] = p.secret;
    for (const to of ['victim', 'queued']) await t.grant({ issuedTo: 'ops', principalFor: to, action: 'send', authorized: true });
  });
  afterEach(() => {
    for (const c of open.splice(0)) c.destroy();
  });
  after(() => t.stop());

  async function connect(id: string, options: Omit<ConnectOptions, 'username' | 'password'>) {
    const result = await RawClient.open(t.mqttUrl, { username: id, password: secrets[id], ...options });
    open.push(result.client);
    return result;
  }

  /** A persistent session subscribed to its own commands, left offline. */
  async function leaveSession(id: string, clientId: string): Promise<void> {
    const { client, code } = await connect(id, { clientId, clean: false });
    assert.equal(code, 0);
    client.send(subscribePacket(1, [{ topic: `devices/${id}/commands/#`, qos: 1 }]));
    await client.next((p) => p.type === SUBACK);
    client.destroy();
    await client.closed;
  }

  async function command(to: string, body: unknown): Promise<void> {
    const token = await t.token('ops', secrets.ops!);
    const res = await t.api('POST', '/messages', { token, body: { type: 'unlock', to, body } });
    assert.equal(res.status, 201);
  }

  it('item 4: another principal cannot take over a persistent session, and the queued commands survive', async () => {
    await leaveSession('victim', 'car-session');
    await command('victim', { n: 1 });
    for (const clean of [false, true]) {
      const { code } = await connect('thief', { clientId: 'car-session', clean });
      assert.equal(code, 2, `clean=${clean}: identifier rejected`);
    }
    const { client, code, sessionPresent } = await connect('victim', { clientId: 'car-session', clean: false });
    assert.equal(code, 0);
    assert.equal(sessionPresent, true, 'the subscriptions are still there');
    const delivered = await client.next((p) => p.type === PUBLISH);
    assert.ok(delivered, 'the queued command is delivered');
    await assertServesNormalDevice(t);
  });

  it('item 4: a connected client is not kicked off by another principal using its id', async () => {
    const { client: victim } = await connect('victim', { clientId: 'car-online' });
    const { code } = await connect('thief', { clientId: 'car-online' });
    assert.equal(code, 2);
    victim.send(subscribePacket(7, [{ topic: 'devices/victim/commands/#', qos: 1 }]));
    assert.ok(await victim.next((p) => p.type === SUBACK), 'the victim is still connected and served');
    assert.equal(victim.isOpen, true);
    await assertServesNormalDevice(t);
  });

  it('a principal holds at most maxSessions persistent sessions: one more ends its oldest offline one', async () => {
    await leaveSession('many', 'many-1');
    await leaveSession('many', 'many-2');
    await leaveSession('many', 'many-3'); // ends many-1, the least recently connected
    const again = await connect('many', { clientId: 'many-1', clean: false }); // ends many-2
    assert.equal(again.code, 0);
    assert.equal(again.sessionPresent, false, 'many-1 was ended');
    assert.equal((await connect('many', { clientId: 'many-3', clean: false })).sessionPresent, true);
    // many-1 and many-3 are connected: a third persistent session has nothing to end
    assert.equal((await connect('many', { clientId: 'many-2', clean: false })).code, 2);
    assert.equal((await connect('many', { clientId: 'many-clean', clean: true })).code, 0, 'clean sessions are not counted');
    await assertServesNormalDevice(t);
  });

  it('queues at most maxQueuedMessages for an offline session; the rest stay readable over REST', async () => {
    await leaveSession('queued', 'queued-1');
    for (let n = 0; n < 8; n++) await command('queued', { n });
    await waitForMetric(t, 'nitrogen_mqtt_limit_hits_total', (v) => v >= 3, { limit: 'maxQueuedMessages' });
    const { client } = await connect('queued', { clientId: 'queued-1', clean: false });
    await client.count((p) => p.type === PUBLISH, 5);
    await command('queued', { n: 'live' });
    await client.count((p) => p.type === PUBLISH, 6);
    const bodies = client.publishes().map((p) => JSON.parse(p.payload.toString()).body.n);
    assert.deepEqual(bodies, [0, 1, 2, 3, 4, 'live']);
    const token = await t.token('queued', secrets.queued!);
    assert.equal((await t.api('GET', '/messages?to=queued&limit=100', { token })).body.messages.length, 9);
    await assertServesNormalDevice(t);
  });
});
