// Devices onboard themselves: an owner's API key registers a device (no other credential), the
// device shows a claim code, a person enters it and becomes an owner; every step over real HTTP
// and MQTT, with the refusals a fleet and an attacker meet.
import assert from 'node:assert/strict';
import { nextMessage, startServer, type TestServer } from './helpers/server.js';

interface Registered {
  principal: { id: string; tags: string[] };
  secret: string;
  claimCode?: { code: string; expiresAt: string };
}

/** Resolves once the clock passed `iso`: what an expiry test waits for, checked against the clock itself. */
async function until(iso: string): Promise<void> {
  while (Date.now() <= Date.parse(iso)) await new Promise((resolve) => setTimeout(resolve, Math.max(1, Date.parse(iso) - Date.now() + 1)));
}

describe('Onboarding: API keys and claim codes', function () {
  this.timeout(30_000);
  let t: TestServer;
  let factory: { id: string; secret: string };
  let factoryToken: string;
  let ann: { id: string; secret: string };
  let annToken: string;

  before(async () => {
    t = await startServer({ devices: { claimCodeTtl: '1s', registrations: { perKey: { count: 3, per: '1h' } }, claimAttempts: { perPrincipal: { failures: 3, per: '1h' } } } });
    [factory, ann] = (await t.register([
      { type: 'app', id: 'factory-line' },
      { type: 'app', id: 'ann' },
    ])) as [typeof factory, typeof ann];
    factoryToken = await t.token(factory.id, factory.secret);
    annToken = await t.token(ann.id, ann.secret);
  });
  after(() => t?.stop());

  async function newKey(body: Record<string, unknown> = {}, token = factoryToken): Promise<{ key: string; id: string }> {
    const res = await t.api('POST', '/api-keys', { token, body });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.match(res.body.key, /^n2k_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    return { key: res.body.key, id: res.body.apiKey.id };
  }

  function selfRegister(key: string, body: Record<string, unknown> = {}) {
    return t.api<Registered>('POST', '/devices/register', { token: null, headers: { authorization: `ApiKey ${key}` }, body });
  }

  it('registers a device with a key: it connects with its secret, and the key owner holds what the key grants', async () => {
    const { key } = await newKey({ deviceTags: ['line-3'], grant: ['view', 'subscribe'], claimable: false });
    const res = await selfRegister(key, { id: 'sensor-1', tags: ['eu'] });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.deepEqual(res.body.principal.tags.sort(), ['eu', 'line-3']);
    assert.equal(res.body.claimCode, undefined);

    const watcher = await t.mqtt(factory!.id, factory!.secret);
    await watcher.subscribeAsync('devices/sensor-1/messages/telemetry', { qos: 1 });
    const device = await t.mqtt('sensor-1', res.body.secret);
    const seen = nextMessage(watcher);
    await device.publishAsync('devices/sensor-1/messages/telemetry', JSON.stringify({ t: 21 }), { qos: 1 });
    assert.deepEqual((await seen).payload.body, { t: 21 });
    // `view` and `subscribe` were granted, not `admin`.
    assert.equal((await t.api('GET', '/principals/sensor-1', { token: factoryToken })).status, 200);
    assert.equal((await t.api('PATCH', '/principals/sensor-1', { token: factoryToken, body: { name: 'x' } })).status, 403);
    await device.endAsync();
    await watcher.endAsync();
  });

  it('a person claims a self-registered device by its code, once: they may administer it and read its messages', async () => {
    const { key } = await newKey();
    const res = await selfRegister(key, { name: 'Thermostat' });
    assert.equal(res.status, 201);
    const { principal, secret, claimCode } = res.body;
    assert.match(claimCode!.code, /^[0-9A-HJKMNP-TV-Z]{5}-[0-9A-HJKMNP-TV-Z]{5}$/);
    // Before the claim, ann may not see the device.
    assert.equal((await t.api('GET', `/principals/${principal.id}`, { token: annToken })).status, 403);

    // Typed as a person would: lower case, no dash.
    const claimed = await t.api('POST', '/claims', { token: annToken, body: { code: claimCode!.code.replace('-', '').toLowerCase() } });
    assert.equal(claimed.status, 200, JSON.stringify(claimed.body));
    assert.equal(claimed.body.principal.id, principal.id);
    assert.equal((await t.api('PATCH', `/principals/${principal.id}`, { token: annToken, body: { name: "Ann's thermostat" } })).status, 200);
    const sent = await t.api('POST', '/messages', { token: await t.token(principal.id, secret), body: { type: 'temperature', body: 20.5 } });
    assert.equal(sent.status, 201);
    const read = await t.api('GET', `/messages?from=${principal.id}`, { token: annToken });
    assert.deepEqual(
      read.body.messages.map((m: { body: unknown }) => m.body),
      [20.5],
    );

    // Used up: nobody claims it again, ann included.
    const again = await t.api('POST', '/claims', { token: factoryToken, body: { code: claimCode!.code } });
    assert.equal(again.status, 400);
    assert.equal(again.body.error.code, 'NITROGEN_ERR_CLAIM_CODE_INVALID');
  });

  it('a revoked key registers nothing, and neither does a key with a wrong secret', async () => {
    const { key, id } = await newKey();
    assert.equal((await t.api('DELETE', `/api-keys/${id}`, { token: factoryToken })).status, 204);
    const refused = await selfRegister(key, { id: 'after-revoke' });
    assert.equal(refused.status, 401);
    assert.equal((refused.body as unknown as { error: { code: string } }).error.code, 'NITROGEN_ERR_BAD_CREDENTIALS');
    const forged = await selfRegister(key.slice(0, -4) + 'AAAA', { id: 'forged' });
    assert.equal(forged.status, 401);
    assert.equal((await t.api('GET', '/principals/after-revoke')).status, 404);
    assert.equal((await t.api('GET', '/principals/forged')).status, 404);
    // A key is listed without its secret, and someone else's key is not theirs to revoke.
    const { id: other } = await newKey();
    const listed = await t.api('GET', '/api-keys', { token: factoryToken });
    assert.ok(listed.body.apiKeys.some((k: { id: string }) => k.id === other));
    assert.ok(!JSON.stringify(listed.body).includes('secretHash'));
    assert.equal((await t.api('DELETE', `/api-keys/${other}`, { token: annToken })).status, 404);
  });

  it('an expired key registers nothing', async () => {
    const expiresAt = new Date(Date.now() + 1500).toISOString();
    const { key } = await newKey({ expiresAt });
    await until(expiresAt);
    assert.equal((await selfRegister(key)).status, 401);
  });

  it('an expired claim code claims nothing', async () => {
    const { key } = await newKey();
    const { body } = await selfRegister(key);
    await until(body.claimCode!.expiresAt);
    const res = await t.api('POST', '/claims', { token: annToken, body: { code: body.claimCode!.code } });
    assert.equal(res.status, 400);
    assert.equal(res.body.error.code, 'NITROGEN_ERR_CLAIM_CODE_INVALID');
    assert.equal((await t.api('GET', `/principals/${body.principal.id}`, { token: annToken })).status, 403);
    // The device (or its owner) asks for a new one, which works.
    const fresh = await t.api('POST', `/principals/${body.principal.id}/claim-code`, { token: await t.token(body.principal.id, body.secret) });
    assert.equal(fresh.status, 201);
    assert.equal((await t.api('POST', '/claims', { token: annToken, body: { code: fresh.body.code } })).status, 200);
  });

  it('limits registrations per key, and failed claims per claimant: guessing stops at the limit', async () => {
    const { key } = await newKey({ claimable: false });
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await selfRegister(key)).status);
    assert.deepEqual(statuses, [201, 201, 201, 429]);

    const [guesser] = await t.register([{ type: 'app', id: 'guesser' }]);
    const token = await t.token(guesser!.id, guesser!.secret);
    const answers: number[] = [];
    for (let i = 0; i < 4; i++) answers.push((await t.api('POST', '/claims', { token, body: { code: `ZZZZZ-ZZZZ${i}` } })).status);
    assert.deepEqual(answers, [400, 400, 400, 429]);
    const limited = await t.api('POST', '/claims', { token, body: { code: 'ZZZZZ-ZZZZZ' } });
    assert.equal(limited.body.error.details.limit, 'credentials.perPrincipal');
    assert.ok(Number(limited.headers.get('retry-after')) >= 1);
  });

  it('devices own no keys, and a key for another owner takes admin on it', async () => {
    const { key } = await newKey({ claimable: false });
    const { body } = await selfRegister(key);
    const deviceToken = await t.token(body.principal.id, body.secret);
    assert.equal((await t.api('POST', '/api-keys', { token: deviceToken, body: {} })).status, 400);
    assert.equal((await t.api('POST', '/api-keys', { token: annToken, body: { owner: factory!.id } })).status, 403);
    assert.equal((await t.api('POST', '/api-keys', { body: { owner: factory!.id } })).status, 201);
  });

  it('rotates a secret with an overlap: old and new both hold, its tokens and connections stay, until a rotation without one', async () => {
    const [car] = await t.register([{ type: 'device', id: 'rolling-car' }]);
    const oldToken = await t.token(car!.id, car!.secret);
    const connected = await t.mqtt(car!.id, car!.secret);
    const rotated = await t.api('POST', '/principals/rolling-car/secret?overlap=1h');
    assert.equal(rotated.status, 200);
    const fresh = rotated.body.secret as string;
    assert.notEqual(fresh, car!.secret);
    // Both secrets log in, the token issued before still answers, the open connection still publishes.
    await t.token(car!.id, car!.secret);
    await t.token(car!.id, fresh);
    assert.equal((await t.api('GET', '/principals/rolling-car', { token: oldToken })).status, 200);
    await connected.publishAsync('devices/rolling-car/messages/telemetry', '{"v":1}', { qos: 1 });
    const late = await t.mqtt(car!.id, car!.secret);
    await late.endAsync();
    assert.equal((await t.api('POST', '/principals/rolling-car/secret?overlap=31d')).status, 400);

    // Without an overlap, everything of the old secrets ends at once.
    const closed = new Promise<void>((resolve) => connected.once('close', () => resolve()));
    const final = await t.api('POST', '/principals/rolling-car/secret');
    await closed;
    await connected.endAsync(true);
    assert.equal((await t.api('POST', '/principals/auth', { token: null, body: { id: car!.id, secret: car!.secret } })).status, 401);
    assert.equal((await t.api('POST', '/principals/auth', { token: null, body: { id: car!.id, secret: fresh } })).status, 401);
    assert.equal((await t.api('GET', '/principals/rolling-car', { token: oldToken })).status, 401);
    await t.token(car!.id, final.body.secret);
  });
});
