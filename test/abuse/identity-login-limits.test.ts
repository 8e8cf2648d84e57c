// Issue: no throttling of logins. 1,000 wrong secrets for one device in 4 s all got plain 401s.
// Credential checks are now limited per principal and per client address: failures count,
// successes do not, and a refusal comes before any hashing (429 + Retry-After, CONNACK 3).
import assert from 'node:assert/strict';
import { assertServesNormalDevice } from '../helpers/abuse.js';
import { connackFrom, httpFrom } from '../helpers/from-address.js';
import { startServer, type TestServer } from '../helpers/server.js';

const PER_PRINCIPAL = 5;
const PER_ADDRESS = 20;
const limits = { perPrincipal: { failures: PER_PRINCIPAL, per: '1m' }, perAddress: { failures: PER_ADDRESS, per: '1m' } };

function login(t: TestServer, from: string, id: string, secret: string, headers: Record<string, string> = {}) {
  return httpFrom(from, `${t.restUrl}/principals/auth`, 'POST', { body: { id, secret }, headers });
}

function assertLimited(res: { status: number; headers: Record<string, unknown>; body: any }, limit: string): void {
  assert.equal(res.status, 429, JSON.stringify(res.body));
  assert.equal(res.body.error.code, 'NITROGEN_ERR_RATE_LIMITED');
  assert.equal(res.body.error.details.limit, limit);
  assert.ok(Number(res.headers['retry-after']) >= 1, `Retry-After: ${res.headers['retry-after']}`);
}

describe('abuse: credential checks are rate-limited per principal and per address', () => {
  let t: TestServer;
  before(async () => (t = await startServer({ credentials: limits })));
  after(() => t.stop());

  it('stops guessing one principal after its failures, refusing even the right secret until it refills', async () => {
    const [car] = await t.register([{ type: 'device', id: 'guessed-car' }]);
    for (let i = 0; i < PER_PRINCIPAL; i++) assert.equal((await login(t, '127.0.0.2', car!.id, `wrong-${i}`)).status, 401);
    assertLimited(await login(t, '127.0.0.2', car!.id, 'wrong-again'), 'credentials.perPrincipal');
    // The account is what is protected: the right secret, from anywhere, waits too.
    assertLimited(await login(t, '127.0.0.3', car!.id, car!.secret), 'credentials.perPrincipal');
    assert.equal(await connackFrom('127.0.0.3', t.mqttUrl, car!.id, car!.secret), 3, 'MQTT: CONNACK 3, server unavailable');
    await assertServesNormalDevice(t);
  });

  it('stops one address guessing across principals, and leaves other addresses alone', async () => {
    const [car] = await t.register([{ type: 'device', id: 'car-behind-attacker' }]);
    for (let i = 0; i < PER_ADDRESS; i++) assert.equal((await login(t, '127.0.0.4', `sprayed-${i}`, 'Password123!')).status, 401);
    assertLimited(await login(t, '127.0.0.4', 'sprayed-next', 'Password123!'), 'credentials.perAddress');
    assertLimited(await login(t, '127.0.0.4', car!.id, car!.secret), 'credentials.perAddress');
    assert.equal(await connackFrom('127.0.0.4', t.mqttUrl, car!.id, car!.secret), 3);
    assert.equal((await login(t, '127.0.0.5', car!.id, car!.secret)).status, 200, 'another address is not limited');
    assert.equal(await connackFrom('127.0.0.5', t.mqttUrl, car!.id, car!.secret), 0);
    await assertServesNormalDevice(t);
  });

  it('limits a burst of 32 concurrent wrong admin logins before they are checked', async () => {
    const answers = await Promise.all(Array.from({ length: 32 }, () => login(t, '127.0.0.6', 'admin', 'not-the-admin-secret')));
    const statuses = answers.map((res) => res.status).sort();
    // Each attempt takes its token before its check runs: only PER_PRINCIPAL reach the hasher.
    assert.deepEqual(statuses, [...Array<number>(PER_PRINCIPAL).fill(401), ...Array<number>(32 - PER_PRINCIPAL).fill(429)]);
    await assertServesNormalDevice(t);
  });

  it('never refuses correct logins, however many come from one address (a fleet behind NAT)', async () => {
    const cars = await t.register(Array.from({ length: 30 }, (_, i) => ({ type: 'device' as const, id: `nat-car-${i}` })));
    // Half the address's allowance spent by a few broken cars first.
    for (let i = 0; i < PER_ADDRESS / 2; i++) assert.equal((await login(t, '127.0.0.7', `nat-car-${i}`, 'stale-secret')).status, 401);
    for (let round = 0; round < 2; round++) {
      for (const car of cars) {
        assert.equal((await login(t, '127.0.0.7', car.id, car.secret)).status, 200);
        assert.equal(await connackFrom('127.0.0.7', t.mqttUrl, car.id, car.secret), 0);
      }
    }
    await assertServesNormalDevice(t);
  });

  it('counts failed bearer tokens per address, and still serves a valid token from there', async () => {
    const [car] = await t.register([{ type: 'device', id: 'token-car' }]);
    const token = await t.token(car!.id, car!.secret);
    const list = (bearer: string) => httpFrom('127.0.0.8', `${t.restUrl}/messages?limit=1`, 'GET', { headers: { authorization: `Bearer ${bearer}` } });
    for (let i = 0; i < PER_ADDRESS; i++) assert.equal((await list(`eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.forged${i}`)).status, 401);
    assertLimited(await list('eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.forged'), 'credentials.perAddress');
    assert.equal((await list(token)).status, 200, 'a valid token costs nothing to check and is not punished');
    await assertServesNormalDevice(t);
  });
});

describe('abuse: behind a front door', () => {
  let t: TestServer;
  const PROXY = '127.0.0.9';
  before(async () => (t = await startServer({ credentials: { ...limits, trustedProxies: [PROXY, '127.0.1.0/24'] } })));
  after(() => t.stop());

  it('counts clients behind a trusted proxy by X-Forwarded-For, and ignores the header from anyone else', async () => {
    const viaProxy = (client: string, i: number) => login(t, PROXY, `behind-${client}-${i}`, 'wrong', { 'x-forwarded-for': `198.51.100.1, ${client}` });
    for (let i = 0; i < PER_ADDRESS; i++) assert.equal((await viaProxy('203.0.113.7', i)).status, 401);
    assertLimited(await viaProxy('203.0.113.7', PER_ADDRESS), 'credentials.perAddress');
    assert.equal((await viaProxy('203.0.113.8', 0)).status, 401, 'another client behind the same proxy is not limited');
    // A proxy chain: trusted hops are skipped from the right.
    assert.equal((await login(t, PROXY, 'chained', 'wrong', { 'x-forwarded-for': '203.0.113.7, 127.0.1.5' })).status, 429);

    // Not from a proxy: the header is the client's own words, and changes nothing.
    for (let i = 0; i < PER_ADDRESS; i++) {
      assert.equal((await login(t, '127.0.0.10', `direct-${i}`, 'wrong', { 'x-forwarded-for': `192.0.2.${i}` })).status, 401);
    }
    assertLimited(await login(t, '127.0.0.10', 'direct-next', 'wrong', { 'x-forwarded-for': '192.0.2.200' }), 'credentials.perAddress');
    await assertServesNormalDevice(t);
  });

  it('limits MQTT connections from a trusted proxy per principal only, since they carry no client address', async () => {
    for (let i = 0; i < PER_ADDRESS + 5; i++) assert.equal(await connackFrom(PROXY, t.mqttUrl, `mqtt-behind-${i}`, 'wrong'), 4);
    for (let i = 0; i < PER_PRINCIPAL; i++) assert.equal(await connackFrom(PROXY, t.mqttUrl, 'mqtt-guessed', 'wrong'), 4);
    assert.equal(await connackFrom(PROXY, t.mqttUrl, 'mqtt-guessed', 'wrong'), 3);
    await assertServesNormalDevice(t);
  });
});

describe('abuse: the limiter is unauthenticated state, and its memory is bounded', () => {
  let t: TestServer;
  const MAX_TRACKED = 100;
  before(async () => (t = await startServer({ credentials: { ...limits, maxTracked: MAX_TRACKED, trustedProxies: ['127.0.0.11'] } })));
  after(() => t.stop());

  it('tracks at most maxTracked principals and addresses, whatever the attacker makes up', async () => {
    for (let i = 0; i < 3 * MAX_TRACKED; i++) {
      const res = await login(t, '127.0.0.11', `made-up-${i}`, 'wrong', { 'x-forwarded-for': `10.0.${i >> 8}.${i & 255}` });
      assert.equal(res.status, 401);
    }
    const metrics = (await t.api('GET', '/metrics')).body as string;
    const tracked = (table: string) => Number(new RegExp(`nitrogen_credential_limiter_tracked\\{table="${table}"\\} (\\d+)`).exec(metrics)?.[1]);
    assert.equal(tracked('principals'), MAX_TRACKED);
    assert.equal(tracked('addresses'), MAX_TRACKED);
    await assertServesNormalDevice(t);
  });
});
