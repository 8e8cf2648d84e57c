// Issue: the login check compared the path case-sensitively while the router matched without
// case, so `/API/v1/principals` reached its handler with no token. Every route, in every
// spelling, must answer 401 without a token, and a token must not make another spelling work.
import assert from 'node:assert/strict';
import { startServer, type TestServer } from '../helpers/server.js';

const ROUTES: Array<[string, string]> = [
  ['GET', '/api/v1/principals'],
  ['GET', '/api/v1/principals/admin'],
  ['POST', '/api/v1/principals'],
  ['GET', '/api/v1/permissions'],
  ['POST', '/api/v1/permissions'],
  ['GET', '/api/v1/messages'],
  ['POST', '/api/v1/messages'],
  ['GET', '/api/v1/messages/stream'],
  ['GET', '/api/v1/sinks'],
  ['GET', '/api/v1/nope'],
  ['GET', '/nope'],
];

/** The spellings an attacker would try: upper case in each segment, trailing slashes, doubled slashes. */
function spellings(path: string): string[] {
  const segments = path.split('/');
  const out = new Set<string>([path, path.toUpperCase(), path + '/', path.replace('/api/', '//api/')]);
  for (let i = 1; i < segments.length; i++) {
    const s = [...segments];
    s[i] = s[i]!.toUpperCase();
    out.add(s.join('/'));
  }
  return [...out];
}

describe('abuse: route login in any spelling', () => {
  let t: TestServer;
  before(async () => (t = await startServer()));
  after(() => t.stop());

  it('answers 401 without a token for every route, whatever the letter case or slashes', async () => {
    for (const [method, path] of ROUTES) {
      for (const spelling of spellings(path)) {
        const res = await fetch(t.origin + spelling, { method, headers: { 'content-type': 'application/json' }, body: method === 'POST' ? '{}' : undefined });
        assert.equal(res.status, 401, `${method} ${spelling} answered ${res.status} without a token`);
        const body = (await res.json()) as { error: { code: string } };
        assert.equal(body.error.code, 'NITROGEN_ERR_UNAUTHENTICATED', `${method} ${spelling}`);
      }
    }
  });

  it('with a token, only the exact spelling of a route reaches its handler', async () => {
    const ok = await fetch(`${t.origin}/api/v1/principals`, { headers: { authorization: `Bearer ${t.adminToken}` } });
    assert.equal(ok.status, 200);
    for (const spelling of ['/API/v1/principals', '/api/V1/principals', '/api/v1/PRINCIPALS']) {
      const res = await fetch(t.origin + spelling, { headers: { authorization: `Bearer ${t.adminToken}` } });
      assert.equal(res.status, 404, `${spelling} answered ${res.status}`);
    }
  });

  it('keeps the public routes public, in their exact spelling only', async () => {
    assert.equal((await fetch(`${t.origin}/health`)).status, 200);
    assert.equal((await fetch(`${t.origin}/metrics`)).status, 200);
    assert.equal((await fetch(`${t.restUrl}/headwaiter`)).status, 200);
    assert.equal((await fetch(`${t.origin}/HEALTH`)).status, 401);
    assert.equal((await fetch(`${t.origin}/API/v1/headwaiter`)).status, 401);
  });
});
