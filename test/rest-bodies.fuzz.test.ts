// Fuzzes every REST route that reads a body with random and mutated JSON: deep nesting, numbers
// beyond double range, odd unicode, prototype keys, invalid UTF-8. Whatever arrives, the answer
// is never a 5xx, an error has the shape {"error":{"code","message"}}, nothing reaches
// Object.prototype, and the server keeps serving a normal device.
import { assertServesNormalDevice } from './helpers/abuse.js';
import { fuzzCases, fuzzSeed, Random, withSeed } from './helpers/fuzz.js';
import { assertPrototypeClean, assertWellFormed, envelopeText, jsonText } from './helpers/json-fuzz.js';
import { startServer, type TestServer } from './helpers/server.js';

describe('fuzz: REST request bodies', function () {
  this.timeout(0);
  let t: TestServer;
  const routes: Array<{ method: string; path: string; token: () => string | null; body: (r: Random) => string }> = [];

  before(async () => {
    t = await startServer();
    const [device] = await t.register([
      { type: 'device', id: 'fuzz-device' },
      { type: 'device', id: 'fuzz-target' },
      { type: 'user', id: 'fuzz-user' },
    ]);
    const deviceToken = await t.token(device!.id, device!.secret);
    routes.push(
      { method: 'POST', path: '/messages', token: () => deviceToken, body: (r) => (r.int(2) === 0 ? envelopeText(r) : `[${envelopeText(r)},${envelopeText(r)}]`) },
      { method: 'POST', path: '/messages', token: () => deviceToken, body: (r) => jsonText(r) },
      { method: 'POST', path: '/principals/auth', token: () => null, body: (r) => (r.int(2) === 0 ? `{"id":${jsonText(r, 1)},"secret":${jsonText(r, 1)}}` : jsonText(r)) },
      { method: 'POST', path: '/principals', token: () => t.adminToken, body: (r) => jsonText(r) },
      // A device may not grant: the body is parsed and validated, and nothing it asks is granted.
      { method: 'POST', path: '/permissions', token: () => deviceToken, body: (r) => jsonText(r) },
      { method: 'PATCH', path: '/principals/fuzz-target', token: () => t.adminToken, body: (r) => jsonText(r) },
      { method: 'PUT', path: '/principals/fuzz-user/password', token: () => t.adminToken, body: (r) => jsonText(r) },
    );
  });
  after(() => t?.stop());

  /** A connection closed without an answer fails here, naming the request. */
  function send(r: Random, method: string, path: string, token: string | null, body: string | Buffer) {
    return t.api(method, path, { token, raw: body as string, headers: { 'content-type': 'application/json' } }).catch((err: Error) => {
      throw new Error(`${method} ${path} ${JSON.stringify(body.toString().slice(0, 120))}: ${err.message} — replay with NITROGEN_FUZZ_SEED=${r.seed}`);
    });
  }

  it('answers random JSON bodies on every route well-formed, never 5xx', async () => {
    const r = new Random(fuzzSeed(0x5eed_b0d1));
    for (let i = 0; i < fuzzCases(300); i++) {
      const route = r.pick(routes);
      const text = route.body(r);
      const res = await send(r, route.method, route.path, route.token(), text);
      withSeed(r, () => assertWellFormed(res, `${route.method} ${route.path} ${JSON.stringify(text.slice(0, 120))}`));
    }
    assertPrototypeClean();
    await assertServesNormalDevice(t);
  });

  it('answers mutated bodies (flipped, cut, repeated and invalid UTF-8 bytes) well-formed, never 5xx', async () => {
    const r = new Random(fuzzSeed(0x0b0d_1e55));
    for (let i = 0; i < fuzzCases(150); i++) {
      const route = r.pick(routes);
      const bytes = r.mutate(Buffer.from(route.body(r)));
      const res = await send(r, route.method, route.path, route.token(), bytes);
      withSeed(r, () => assertWellFormed(res, `${route.method} ${route.path} ${JSON.stringify(bytes.toString('latin1').slice(0, 120))}`));
    }
    assertPrototypeClean();
    await assertServesNormalDevice(t);
  });
});
