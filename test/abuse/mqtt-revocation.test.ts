// Hardening issue, item 12: a revoked principal's last will was still published and stored
// after it was disabled, deleted or given a new secret: the server closed its connection, and
// the close published the will as the principal's last word.
import assert from 'node:assert/strict';
import { assertServesNormalDevice } from '../helpers/abuse.js';
import { RawClient } from '../helpers/mqtt-raw.js';
import { startServer, type TestServer } from '../helpers/server.js';

describe('abuse: the last will of a revoked MQTT client', function () {
  let t: TestServer;
  before(async () => (t = await startServer()));
  after(() => t.stop());

  const wills = async (from: string) => (await t.api('GET', `/messages?from=${from}&type=will`)).body.messages;

  /** A device connected with a will on its own messages topic. */
  async function connectWithWill(id: string): Promise<RawClient> {
    const [device] = await t.register([{ type: 'device', id }]);
    const { client, code } = await RawClient.open(t.mqttUrl, {
      clientId: `${id}-c`,
      username: id,
      password: device!.secret,
      will: { topic: `devices/${id}/messages/will`, payload: JSON.stringify({ last: 'words' }), qos: 1 },
    });
    assert.equal(code, 0);
    return client;
  }

  it('publishes the will of a connection that simply drops (the control)', async () => {
    const client = await connectWithWill('will-dropped');
    client.destroy();
    const deadline = Date.now() + 5000;
    while ((await wills('will-dropped')).length === 0) {
      assert.ok(Date.now() < deadline, 'the will of a dropped connection is stored');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  });

  const revocations: Array<[string, (id: string) => Promise<number>]> = [
    ['disabled', async (id) => (await t.api('PATCH', `/principals/${id}`, { body: { enabled: false } })).status],
    ['given a new secret', async (id) => (await t.api('POST', `/principals/${id}/secret`)).status],
    ['deleted', async (id) => (await t.api('DELETE', `/principals/${id}`)).status],
  ];
  for (const [how, revoke] of revocations) {
    it(`item 12: drops the will of a principal ${how}`, async () => {
      const id = `will-${how.replace(/ /g, '-')}`;
      const client = await connectWithWill(id);
      assert.ok((await revoke(id)) < 300);
      // The server publishes a will, if it does, before it closes the socket; a commit that
      // follows (the normal device's) is stored after it.
      await client.closed;
      await assertServesNormalDevice(t);
      assert.deepEqual(await wills(id), []);
    });
  }
});
