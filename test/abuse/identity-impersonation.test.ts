// Issue: impersonation tokens outlived the right to impersonate and even the impersonator
// (valid up to a day). They now carry their impersonator, hold only while it exists unchanged,
// is enabled and still holds `impersonate`, last at most `impersonationTtl`, and the MQTT
// connections and SSE streams opened with them end with the impersonator's revocation.
import assert from 'node:assert/strict';
import type { MqttClient } from 'mqtt';
import { assertServesNormalDevice } from '../helpers/abuse.js';
import { startServer, type TestServer } from '../helpers/server.js';

let serial = 0;

function closed(client: MqttClient): Promise<void> {
  return new Promise((resolve) => (client.disconnected ? resolve() : client.once('close', () => resolve())));
}

describe("abuse: impersonation tokens end with the impersonator's rights", () => {
  let t: TestServer;
  let device: { id: string; secret: string };
  let app: { id: string; secret: string };
  let appToken: string;
  let grant: string;

  before(async () => (t = await startServer()));
  after(() => t.stop());

  beforeEach(async () => {
    serial++;
    [device, app] = (await t.register([
      { type: 'device', id: `imp-car-${serial}` },
      { type: 'app', id: `imp-app-${serial}` },
    ])) as [typeof device, typeof app];
    grant = await t.grant({ issuedTo: app.id, principalFor: device.id, action: 'impersonate', authorized: true });
    appToken = await t.token(app.id, app.secret);
  });

  async function impersonate(token = appToken): Promise<{ status: number; accessToken: string; expiresAt: string }> {
    const res = await t.api('POST', `/principals/${device.id}/impersonate`, { token });
    return { status: res.status, accessToken: res.body.accessToken, expiresAt: res.body.expiresAt };
  }

  const asDevice = (token: string) => t.api('GET', `/principals/${device.id}`, { token });

  it('lasts an hour, not the day a plain token lasts', async () => {
    const issued = await impersonate();
    assert.equal(issued.status, 200);
    assert.equal((await asDevice(issued.accessToken)).status, 200);
    const left = Date.parse(issued.expiresAt) - Date.now();
    assert.ok(left <= 3600_000 && left > 3500_000, `expires in ${left} ms`);
    await assertServesNormalDevice(t);
  });

  it('ends when the impersonator loses impersonate', async () => {
    const { accessToken } = await impersonate();
    assert.equal((await t.api('DELETE', `/permissions/${grant}`)).status, 204);
    const res = await asDevice(accessToken);
    assert.equal(res.status, 401);
    assert.equal(res.body.error.code, 'NITROGEN_ERR_TOKEN_INVALID');
    assert.match(res.body.error.message, /may no longer impersonate/);
    await assertServesNormalDevice(t);
  });

  it('ends, with its MQTT connection, when the impersonator is disabled', async () => {
    const { accessToken } = await impersonate();
    const client = await t.mqtt(device.id, accessToken);
    const gone = closed(client);
    assert.equal((await t.api('PATCH', `/principals/${app.id}`, { body: { enabled: false } })).status, 200);
    await gone;
    assert.equal((await asDevice(accessToken)).status, 401);
    await assert.rejects(t.mqtt(device.id, accessToken), (err: { code?: number }) => err.code === 4);
    await assertServesNormalDevice(t);
  });

  it("ends, with its MQTT connection, when the impersonator's secret is replaced", async () => {
    const { accessToken } = await impersonate();
    const client = await t.mqtt(device.id, accessToken);
    const gone = closed(client);
    assert.equal((await t.api('POST', `/principals/${app.id}/secret`)).status, 200);
    await gone;
    assert.equal((await asDevice(accessToken)).status, 401);
    await assertServesNormalDevice(t);
  });

  it('ends, with its MQTT connection, when the impersonator is deleted', async () => {
    const { accessToken } = await impersonate();
    const client = await t.mqtt(device.id, accessToken);
    const gone = closed(client);
    assert.equal((await t.api('DELETE', `/principals/${app.id}`)).status, 204);
    await gone;
    assert.equal((await asDevice(accessToken)).status, 401);
    await assertServesNormalDevice(t);
  });

  it("leaves the device's own sessions alone when its impersonator is revoked", async () => {
    const own = await t.mqtt(device.id, device.secret);
    const { accessToken } = await impersonate();
    const impersonated = await t.mqtt(device.id, accessToken);
    const gone = closed(impersonated);
    assert.equal((await t.api('DELETE', `/principals/${app.id}`)).status, 204);
    await gone;
    assert.equal(own.connected, true);
    await own.publishAsync(`devices/${device.id}/messages/telemetry`, '{"still":"here"}', { qos: 1 });
    await own.endAsync();
    await assertServesNormalDevice(t);
  });

  it('cannot be used to impersonate again, which would outlive the impersonator', async () => {
    const { accessToken } = await impersonate();
    const [other] = await t.register([{ type: 'device', id: `imp-other-${serial}` }]);
    await t.grant({ issuedTo: device.id, principalFor: other!.id, action: 'impersonate', authorized: true });
    const res = await t.api('POST', `/principals/${other!.id}/impersonate`, { token: accessToken });
    assert.equal(res.status, 403);
    assert.equal(res.body.error.code, 'NITROGEN_ERR_FORBIDDEN');
    await assertServesNormalDevice(t);
  });
});
