import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { SignJWT } from 'jose';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, type TestServer } from './helpers/server.js';

describe('REST API', function () {
  let t: TestServer;
  let car: { id: string; secret: string };
  let carToken: string;

  before(async () => {
    t = await startServer();
    car = (await t.register([{ type: 'device', id: 'car-1', name: 'Car 1', tags: ['eu'] }]))[0]!;
    carToken = await t.token(car!.id, car!.secret);
  });

  after(() => t.stop());

  describe('registration and authentication', () => {
    it('registers one principal and returns its secret once', async () => {
      const res = await t.api('POST', '/principals', { body: { type: 'device', name: 'Solo', tags: ['x'] } });
      assert.equal(res.status, 201);
      const [{ principal, secret }] = res.body.principals;
      assert.match(principal.id, /^device-[0-9a-f]{16}$/);
      assert.equal(principal.name, 'Solo');
      assert.equal(principal.secretHash, undefined);
      assert.equal(typeof secret, 'string');
      assert.ok(Buffer.from(secret, 'base64url').length === 32, 'a 256-bit secret');
      const fetched = await t.api('GET', `/principals/${principal.id}`);
      assert.equal(fetched.status, 200);
      assert.equal(fetched.body.principal.secret, undefined);
      assert.equal(fetched.body.principal.secretHash, undefined);
    });

    it('registers many principals in one request, all or none', async () => {
      const specs = Array.from({ length: 250 }, (_, i) => ({ type: 'device' as const, id: `bulk-${i}` }));
      const res = await t.api('POST', '/principals', { body: specs });
      assert.equal(res.status, 201);
      assert.equal(res.body.principals.length, 250);
      assert.equal(new Set(res.body.principals.map((p: { secret: string }) => p.secret)).size, 250);
      const again = await t.api('POST', '/principals', {
        body: [
          { type: 'device', id: 'bulk-new' },
          { type: 'device', id: 'bulk-3' },
        ],
      });
      assert.equal(again.status, 409);
      assert.equal(again.body.error.code, 'NITROGEN_ERR_CONFLICT');
      assert.equal((await t.api('GET', '/principals/bulk-new')).status, 404);
    });

    it('stores server-made secrets as SHA-256 digests and user passwords with scrypt', async () => {
      const [user] = (await t.api('POST', '/principals', { body: { type: 'user', id: 'alice', password: 'correct horse battery' } })).body.principals;
      assert.equal(user.secret, undefined, 'a chosen password is not echoed');
      const token = await t.token('alice', 'correct horse battery');
      assert.ok(token.length > 20);
      const db = new Database(join(t.dataDir, 'registry.db'), { readonly: true });
      const hashes = db.prepare('SELECT id, secret_hash AS hash FROM principals').all() as Array<{ id: string; hash: string }>;
      db.close();
      const hashOf = (id: string) => hashes.find((h) => h.id === id)!.hash;
      assert.match(hashOf('alice'), /^scrypt:/, 'user password stored with scrypt');
      assert.equal(hashOf('car-1'), 'sha256:' + createHash('sha256').update(car!.secret).digest('hex'));
      assert.ok(!hashes.some((h) => h.hash.includes(car!.secret)), 'no secret in clear');
    });

    it('issues an access token that expires, and refuses bad credentials with 401', async () => {
      const ok = await t.api('POST', '/principals/auth', { token: null, body: { id: car!.id, secret: car!.secret } });
      assert.equal(ok.status, 200);
      assert.ok(Date.parse(ok.body.expiresAt) > Date.now());
      assert.equal(ok.body.principal.id, car!.id);
      for (const body of [
        { id: car!.id, secret: 'wrong' },
        { id: 'nobody', secret: car!.secret },
      ]) {
        const res = await t.api('POST', '/principals/auth', { token: null, body });
        assert.equal(res.status, 401);
        assert.equal(res.body.error.code, 'NITROGEN_ERR_BAD_CREDENTIALS');
      }
      const malformed = await t.api('POST', '/principals/auth', { token: null, body: { id: 5 } });
      assert.equal(malformed.status, 400);
    });

    it('refuses missing, forged and expired tokens', async () => {
      const none = await t.api('GET', '/messages', { token: null });
      assert.equal(none.status, 401);
      assert.equal(none.body.error.code, 'NITROGEN_ERR_UNAUTHENTICATED');
      const forged = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('admin').setIssuer('nitrogen').setExpirationTime('1h').sign(Buffer.from('not-the-server-key-not-the-server-key'));
      const res = await t.api('GET', '/messages', { token: forged });
      assert.equal(res.status, 401);
      assert.equal(res.body.error.code, 'NITROGEN_ERR_TOKEN_INVALID');
      const key = Buffer.from(readFileSync(join(t.dataDir, 'token.key'), 'utf8').trim(), 'utf8');
      const expired = await new SignJWT({})
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject(car!.id)
        .setIssuer('nitrogen')
        .setExpirationTime(Math.floor(Date.now() / 1000) - 10)
        .sign(key);
      const late = await t.api('GET', '/messages', { token: expired });
      assert.equal(late.status, 401);
      assert.equal(late.body.error.code, 'NITROGEN_ERR_TOKEN_EXPIRED');
      const none2 = await t.api('GET', '/messages', { token: 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9.' });
      assert.equal(none2.status, 401);
    });

    it('lets only admins register, and a disabled principal no longer authenticates', async () => {
      const res = await t.api('POST', '/principals', { token: carToken, body: { type: 'device' } });
      assert.equal(res.status, 403);
      assert.equal(res.body.error.code, 'NITROGEN_ERR_FORBIDDEN');
      const [d] = await t.register([{ type: 'device', id: 'to-disable' }]);
      const token = await t.token(d!.id, d!.secret);
      assert.equal((await t.api('PATCH', '/principals/to-disable', { body: { enabled: false } })).status, 200);
      assert.equal((await t.api('POST', '/principals/auth', { token: null, body: d })).body.error.code, 'NITROGEN_ERR_PRINCIPAL_DISABLED');
      assert.equal((await t.api('GET', '/messages', { token })).status, 403);
    });

    it('validates registrations and names the bad field', async () => {
      const cases: Array<[unknown, string]> = [
        [{ type: 'toaster' }, 'body.type'],
        [{ type: 'device', id: 'bad/id' }, 'body.id'],
        [{ type: 'device', colour: 'red' }, 'body.colour'],
        [[{ type: 'device' }, { type: 'device', tags: 'x' }], '[1].tags'],
        [{ type: 'device', password: 'longenough-password' }, 'body.password'],
      ];
      for (const [body, field] of cases) {
        const res = await t.api('POST', '/principals', { body });
        assert.equal(res.status, 400, JSON.stringify(body));
        assert.equal(res.body.error.code, 'NITROGEN_ERR_VALIDATION');
        assert.equal(res.body.error.details.field, field);
      }
    });

    it('revokes tokens when a principal is re-created or its secret rotated, and never impersonates admin', async () => {
      const [d] = await t.register([{ type: 'device', id: 'phoenix' }]);
      const oldToken = await t.token(d!.id, d!.secret);
      assert.equal((await t.api('DELETE', '/principals/phoenix')).status, 204);
      const [reborn] = await t.register([{ type: 'device', id: 'phoenix' }]);
      const stale = await t.api('GET', '/messages', { token: oldToken });
      assert.equal(stale.status, 401);
      assert.equal(stale.body.error.code, 'NITROGEN_ERR_TOKEN_INVALID');
      const fresh = await t.token(reborn!.id, reborn!.secret);
      assert.equal((await t.api('POST', '/principals/phoenix/secret')).status, 200);
      assert.equal((await t.api('GET', '/messages', { token: fresh })).status, 401, 'rotation revokes tokens');

      const [app] = await t.register([{ type: 'app', id: 'shape-shifter' }]);
      await t.grant({ issuedTo: 'shape-shifter', principalFor: null, action: 'impersonate', authorized: true });
      const appToken = await t.token(app!.id, app!.secret);
      assert.equal((await t.api('POST', '/principals/car-1/impersonate', { token: appToken })).status, 200);
      const escalate = await t.api('POST', '/principals/admin/impersonate', { token: appToken });
      assert.equal(escalate.status, 403);
    });

    it('lets a user change their password, and only theirs', async () => {
      await t.api('POST', '/principals', { body: { type: 'user', id: 'bob', password: 'first password 123' } });
      const bob = await t.token('bob', 'first password 123');
      assert.equal((await t.api('PUT', '/principals/bob/password', { token: bob, body: { password: 'short' } })).status, 400);
      assert.equal((await t.api('PUT', '/principals/bob/password', { token: bob, body: { password: 'second password 456' } })).status, 204);
      assert.equal((await t.api('POST', '/principals/auth', { token: null, body: { id: 'bob', secret: 'first password 123' } })).status, 401);
      const again = await t.token('bob', 'second password 456');
      assert.equal((await t.api('PUT', '/principals/alice/password', { token: again, body: { password: 'not yours at all' } })).status, 403);
      assert.equal((await t.api('PUT', '/principals/car-1/password', { body: { password: 'devices have none' } })).status, 400);
    });

    it('rotates a device secret, and deletes principals', async () => {
      const [d] = await t.register([{ type: 'device', id: 'rotate-me' }]);
      const res = await t.api('POST', '/principals/rotate-me/secret');
      assert.equal(res.status, 200);
      assert.equal((await t.api('POST', '/principals/auth', { token: null, body: d })).status, 401);
      await t.token('rotate-me', res.body.secret);
      assert.equal((await t.api('DELETE', '/principals/rotate-me')).status, 204);
      assert.equal((await t.api('GET', '/principals/rotate-me')).status, 404);
      assert.equal((await t.api('DELETE', '/principals/admin')).status, 403);
    });

    it('lists principals with filters and paging, and only what the caller may view', async () => {
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const res: any = await t.api('GET', `/principals?type=device&limit=40${cursor ? `&cursor=${cursor}` : ''}`);
        assert.equal(res.status, 200);
        assert.ok(res.body.principals.length <= 40);
        seen.push(...res.body.principals.map((p: { id: string }) => p.id));
        cursor = res.body.next;
      } while (cursor);
      assert.ok(seen.includes('bulk-249') && seen.includes('car-1'));
      assert.equal(new Set(seen).size, seen.length);
      assert.deepEqual(seen, [...seen].sort());
      const tagged = await t.api('GET', '/principals?tag=eu');
      assert.deepEqual(
        tagged.body.principals.map((p: { id: string }) => p.id),
        ['car-1'],
      );
      const asCar = await t.api('GET', '/principals', { token: carToken });
      assert.deepEqual(
        asCar.body.principals.map((p: { id: string }) => p.id),
        ['car-1'],
      );
      assert.equal((await t.api('GET', '/principals/bulk-1', { token: carToken })).status, 403);
      assert.equal((await t.api('GET', '/principals?colour=red')).status, 400);
    });
  });

  describe('messages', () => {
    it('ingests one envelope and a batch, answering 201 after commit', async () => {
      const one = await t.api('POST', '/messages', { token: carToken, body: { type: 'telemetry', body: { speed: 50 } } });
      assert.equal(one.status, 201);
      const [m] = one.body.messages;
      assert.equal(m.from, car!.id);
      assert.match(m.id, /^[0-9a-f]{32}$/);
      assert.ok(Date.parse(m.ts) <= Date.now());
      assert.deepEqual((await t.api('GET', `/messages/${m.id}`, { token: carToken })).body.message, m);
      const batch = await t.api('POST', '/messages', {
        token: carToken,
        body: [
          { type: 'location', body: { lat: 1 } },
          { type: 'location', body: { lat: 2 }, id: 'client-chosen-1' },
        ],
      });
      assert.equal(batch.status, 201);
      assert.deepEqual(batch.body.messages.map((x: { id: string }) => x.id).slice(1), ['client-chosen-1']);
    });

    it('treats a client-supplied id as an idempotency key', async () => {
      const body = { id: 'idem-1', type: 'telemetry', body: { n: 1 } };
      assert.equal((await t.api('POST', '/messages', { token: carToken, body })).status, 201);
      assert.equal((await t.api('POST', '/messages', { token: carToken, body: { ...body, body: { n: 2 } } })).status, 201);
      const res = await t.api('GET', '/messages/idem-1', { token: carToken });
      assert.deepEqual(res.body.message.body, { n: 1 });
    });

    it('refuses bad input with a code and keeps serving', async () => {
      const cases: Array<[{ raw?: string; body?: unknown; headers?: Record<string, string> }, number, string]> = [
        [{ raw: '{"type": "telemetry", ' }, 400, 'NITROGEN_ERR_MALFORMED_JSON'],
        [{ raw: '' }, 400, 'NITROGEN_ERR_VALIDATION'],
        [{ body: { type: 42 } }, 400, 'NITROGEN_ERR_VALIDATION'],
        [{ body: { body: {} } }, 400, 'NITROGEN_ERR_VALIDATION'],
        [{ body: { type: 'telemetry', ts: 'yesterday' } }, 400, 'NITROGEN_ERR_VALIDATION'],
        [{ body: { type: 'telemetry', ts: 'June 1, 2026' } }, 400, 'NITROGEN_ERR_VALIDATION'],
        [{ body: { type: 'telemetry', ts: '2026-06-01T10:00:00' } }, 400, 'NITROGEN_ERR_VALIDATION'],
        [{ body: { type: 'telemetry', tags: ['a,b'] } }, 400, 'NITROGEN_ERR_VALIDATION'],
        [{ body: { type: 'telemetry', tags: [1] } }, 400, 'NITROGEN_ERR_VALIDATION'],
        [{ body: { type: 'telemetry', speed: 3 } }, 400, 'NITROGEN_ERR_VALIDATION'],
        [{ body: 'just a string' }, 400, 'NITROGEN_ERR_VALIDATION'],
        [{ body: [] }, 400, 'NITROGEN_ERR_VALIDATION'],
        [{ body: { type: 'telemetry', from: 'car-2' } }, 403, 'NITROGEN_ERR_SENDER_MISMATCH'],
        [{ body: { type: 'telemetry', to: 'bulk-1' } }, 403, 'NITROGEN_ERR_FORBIDDEN'],
        [{ body: { type: 'telemetry', body: 'x'.repeat(300 * 1024) } }, 413, 'NITROGEN_ERR_PAYLOAD_TOO_LARGE'],
        [{ body: Array.from({ length: 1001 }, () => ({ type: 't' })) }, 413, 'NITROGEN_ERR_BATCH_TOO_LARGE'],
        [{ raw: 'type=telemetry', headers: { 'content-type': 'application/x-www-form-urlencoded' } }, 415, 'NITROGEN_ERR_UNSUPPORTED_MEDIA_TYPE'],
      ];
      for (const [request, status, code] of cases) {
        const res = await t.api('POST', '/messages', { token: carToken, ...request });
        assert.equal(res.status, status, `${JSON.stringify(request).slice(0, 80)} → ${JSON.stringify(res.body)}`);
        assert.equal(res.body.error.code, code);
        assert.equal(typeof res.body.error.message, 'string');
      }
      const huge = await t.api('POST', '/messages', { token: carToken, raw: JSON.stringify({ type: 't', body: 'x'.repeat(17 * 1024 * 1024) }) });
      assert.equal(huge.status, 413);
      const after = await t.api('POST', '/messages', { token: carToken, body: { type: 'telemetry' } });
      assert.equal(after.status, 201, 'still serving');
      const batchWithOneBad = await t.api('POST', '/messages', { token: carToken, body: [{ type: 'ok', id: 'never-stored' }, { type: '' }] });
      assert.equal(batchWithOneBad.status, 400);
      assert.equal(batchWithOneBad.body.error.details.field, '[1].type');
      assert.equal((await t.api('GET', '/messages/never-stored')).status, 404, 'nothing of a refused batch is stored');
    });

    it('answers unknown routes and ids with 404 and a code', async () => {
      const res = await t.api('GET', '/nope');
      assert.equal(res.status, 404);
      assert.equal(res.body.error.code, 'NITROGEN_ERR_NOT_FOUND');
      assert.equal((await t.api('GET', '/messages/does-not-exist')).body.error.code, 'NITROGEN_ERR_NOT_FOUND');
    });
  });

  describe('system routes', () => {
    it('serves headwaiter without a token, health and Prometheus metrics', async () => {
      const hw = await t.api('GET', '/headwaiter', { token: null });
      assert.equal(hw.status, 200);
      assert.equal(hw.body.endpoints.rest, t.restUrl);
      assert.equal(hw.body.endpoints.mqtt, t.mqttUrl);
      const health = await t.api('GET', '/health', { token: null });
      assert.equal(health.body.status, 'ok');
      const metrics = await t.api('GET', '/metrics', { token: null });
      assert.equal(metrics.status, 200);
      assert.match(metrics.body, /nitrogen_messages_ingested_total\{transport="rest"\} \d+/);
      assert.match(metrics.body, /process_cpu_user_seconds_total/);
    });
  });
});
