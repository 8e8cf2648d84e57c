// Issue: tokens without `exp` were accepted, so a token signed with the key (a leaked one, or one
// made by a tool) never ended. Every token must now expire; forged, unsigned and re-signed
// tokens are refused over REST and MQTT alike.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SignJWT, decodeJwt } from 'jose';
import { assertServesNormalDevice } from '../helpers/abuse.js';
import { startServer, type TestServer } from '../helpers/server.js';

const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');

describe('abuse: hostile access tokens', () => {
  let t: TestServer;
  let car: { id: string; secret: string };
  let real: string;
  let key: Buffer;

  before(async () => {
    t = await startServer();
    [car] = (await t.register([{ type: 'device', id: 'token-target' }])) as [typeof car];
    real = await t.token(car.id, car.secret);
    key = Buffer.from(readFileSync(join(t.dataDir, 'token.key'), 'utf8').trim());
  });
  after(() => t.stop());

  async function refused(token: string, code: string): Promise<void> {
    const res = await t.api('GET', `/principals/${car.id}`, { token });
    assert.equal(res.status, 401, `${code}: ${JSON.stringify(res.body)}`);
    assert.equal(res.body.error.code, code);
    await assert.rejects(t.mqtt(car.id, token), (err: { code?: number }) => err.code === 4, 'MQTT: CONNACK 4');
  }

  it('refuses a token without an expiry, even one signed with the server key and bound to the principal', async () => {
    const { stamp, typ } = decodeJwt(real) as { stamp: string; typ: string };
    const endless = await new SignJWT({ stamp, typ }).setProtectedHeader({ alg: 'HS256' }).setSubject(car.id).setIssuer('nitrogen').setIssuedAt().sign(key);
    await refused(endless, 'NITROGEN_ERR_TOKEN_INVALID');
    // The same claims with an expiry are accepted: only the missing `exp` was refused.
    const ending = await new SignJWT({ stamp, typ }).setProtectedHeader({ alg: 'HS256' }).setSubject(car.id).setIssuer('nitrogen').setIssuedAt().setExpirationTime('5m').sign(key);
    assert.equal((await t.api('GET', `/principals/${car.id}`, { token: ending })).status, 200);
    await assertServesNormalDevice(t);
  });

  it('refuses an unsigned token, a token signed with another key, and one whose claims were edited', async () => {
    const [header, payload, signature] = real.split('.') as [string, string, string];
    const claims = decodeJwt(real);
    await refused(`${b64({ alg: 'none', typ: 'JWT' })}.${payload}.`, 'NITROGEN_ERR_TOKEN_INVALID');
    await refused(`${b64({ alg: 'none' })}.${payload}.${signature}`, 'NITROGEN_ERR_TOKEN_INVALID');
    await refused(await new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(Buffer.alloc(64, 7)), 'NITROGEN_ERR_TOKEN_INVALID');
    await refused(`${header}.${b64({ ...claims, exp: (claims.exp ?? 0) + 86_400 * 365 })}.${signature}`, 'NITROGEN_ERR_TOKEN_INVALID');
    await assertServesNormalDevice(t);
  });

  it('refuses an expired token with its own code', async () => {
    const { stamp, typ } = decodeJwt(real) as { stamp: string; typ: string };
    const expired = await new SignJWT({ stamp, typ })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(car.id)
      .setIssuer('nitrogen')
      .setExpirationTime(Math.floor(Date.now() / 1000) - 60)
      .sign(key);
    await refused(expired, 'NITROGEN_ERR_TOKEN_EXPIRED');
    await assertServesNormalDevice(t);
  });
});
