// Hardening issue, item 13: anyone could send to `admin`. The reply rule lets a principal
// address one that may send to it, and the bootstrap admin may send to everyone without a
// record, so every device could put messages on `devices/admin/commands/…`. Decided: the reply
// rule does not count admin's unconditional rights; addressing admin takes a record.
import assert from 'node:assert/strict';
import type { MqttClient } from 'mqtt';
import { assertServesNormalDevice } from '../helpers/abuse.js';
import { startServer, type TestServer } from '../helpers/server.js';

function closed(client: MqttClient): Promise<void> {
  return new Promise((resolve) => (client.connected ? client.once('close', () => resolve()) : resolve()));
}

describe('abuse: sending to admin', function () {
  let t: TestServer;
  const secrets: Record<string, string> = {};
  before(async () => {
    t = await startServer();
    for (const p of await t.register([
      { type: 'device', id: 'nobody' },
      { type: 'app', id: 'operator' },
    ]))
      secrets[p.id] = p.secret;
  });
  after(() => t.stop());

  const toAdmin = async () => (await t.api('GET', '/messages?to=admin&limit=100')).body.messages;

  it('item 13: a principal without a record cannot address admin, over REST or MQTT; nothing is stored', async () => {
    const token = await t.token('nobody', secrets.nobody!);
    const res = await t.api('POST', '/messages', { token, body: { type: 'hello', to: 'admin', body: {} } });
    assert.equal(res.status, 403);
    assert.equal(res.body.error.code, 'NITROGEN_ERR_FORBIDDEN');
    for (const [topic, payload] of [
      ['devices/admin/commands/hello', '{}'],
      ['devices/nobody/messages', JSON.stringify({ type: 'hello', to: 'admin', body: {} })],
    ]) {
      const client = await t.mqtt('nobody', secrets.nobody!);
      const gone = closed(client);
      client.publish(topic!, payload!, { qos: 1 });
      await gone;
    }
    assert.deepEqual(await toAdmin(), []);
    await assertServesNormalDevice(t);
  });

  it('a record granting send on admin allows it, and admin still commands everyone', async () => {
    await t.grant({ issuedTo: 'operator', principalFor: 'admin', action: 'send', authorized: true });
    const token = await t.token('operator', secrets.operator!);
    assert.equal((await t.api('POST', '/messages', { token, body: { type: 'report', to: 'admin', body: {} } })).status, 201);
    assert.equal((await t.api('POST', '/messages', { body: { type: 'reboot', to: 'nobody', body: {} } })).status, 201);
    assert.equal((await toAdmin()).length, 1);
  });
});
