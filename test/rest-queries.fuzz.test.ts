// Fuzzes query strings and path parameters of the REST GET routes: unknown and repeated
// parameters, prototype names, bad percent-escapes, control bytes, limits beyond any integer,
// times out of range, forged cursors (some holding deeply nested JSON). The answer is never a
// 5xx, an error has the API's shape, and the server keeps serving a normal device.
import { assertServesNormalDevice } from './helpers/abuse.js';
import { fuzzCases, fuzzSeed, Random, withSeed } from './helpers/fuzz.js';
import { assertPrototypeClean, assertWellFormed, deepText } from './helpers/json-fuzz.js';
import { startServer, type TestServer } from './helpers/server.js';

const NAMES = ['from', 'to', 'type', 'tag', 'since', 'until', 'order', 'limit', 'cursor', '__proto__', 'constructor', 'hasOwnProperty', 'limit[]', 'a[b]', '', 'FROM', 'x'];

/** Raw (already escaped) values; some escapes are invalid on purpose. */
function rawValue(r: Random, cursors: string[]): string {
  switch (r.int(9)) {
    case 0:
      return r.pick(['car-1', 'fuzz-device', 'telemetry', 'a,b,,c', ',', '', '*', '..', 'a%2Cb']);
    case 1:
      return r.pick(['1', '0', '-1', '1000', '1001', '1e400', '99999999999999999999', '0x10', '1.5', 'NaN', 'Infinity', ' 5']);
    case 2:
      return r.pick(['2026-06-01T10:00:00Z', '1970-01-01T00:00:00Z', '9999-12-31T23:59:59.999%2B14:00', '2026-13-01', '+275760-09-13T00:00:00.000Z', '1969-12-31T23:59:59Z', 'now']);
    case 3:
      return r.pick(['asc', 'desc', 'ASC', 'random']);
    case 4:
      return r.pick(['%00', '%ff', '%C0%AF', '%zz', '%', '%E2%80%AE', '%F0%9F%98%80', '%ED%A0%80', '%0D%0AX-Injected:%201']);
    case 5:
      return r.pick(cursors);
    case 6:
      // Forged cursors: base64url of arbitrary JSON, deep JSON, or bytes.
      return Buffer.from(r.pick([deepText(r).slice(0, 6000), '["a",1]', '[]', '{"__proto__":{"polluted":1}}', '"x"'])).toString('base64url');
    case 7:
      return Buffer.from(r.bytes(r.int(40))).toString('base64url');
    default:
      return encodeURIComponent(r.bytes(1 + r.int(12)).toString('latin1'));
  }
}

function queryString(r: Random, cursors: string[]): string {
  const parts = Array.from({ length: r.int(6) }, () => `${r.pick(NAMES)}=${rawValue(r, cursors)}`);
  if (r.int(10) === 0) parts.push(`limit=${'9'.repeat(400)}`);
  return parts.length === 0 ? '' : `?${parts.join(r.int(8) === 0 ? ';' : '&')}`;
}

function pathParameter(r: Random): string {
  return r.pick(['fuzz-device', 'admin', 'does-not-exist', '%00', '%ff', '%zz', '..%2F..%2Fetc%2Fpasswd', '%2e%2e', 'a'.repeat(300), '__proto__', 'constructor', '%E2%80%AE', 'stream', encodeURIComponent('😀')]);
}

describe('fuzz: REST query strings and path parameters', function () {
  this.timeout(0);
  let t: TestServer;
  let deviceToken: string;
  const cursors: string[] = [];

  before(async () => {
    t = await startServer();
    const [device] = await t.register([{ type: 'device', id: 'fuzz-device' }]);
    deviceToken = await t.token(device!.id, device!.secret);
    await t.api('POST', '/messages', { token: deviceToken, body: Array.from({ length: 5 }, (_, i) => ({ type: 'telemetry', body: { i } })) });
    // Real cursors too, reused with other filters than the ones that made them.
    const page = await t.api('GET', '/messages?limit=2');
    cursors.push(page.body.next);
    const principals = await t.api('GET', '/principals?limit=1');
    cursors.push(principals.body.next);
  });
  after(() => t?.stop());

  it('answers random query strings and path parameters well-formed, never 5xx', async () => {
    const r = new Random(fuzzSeed(0x9e11_0a5e));
    const routes = [
      () => `/messages${queryString(r, cursors)}`,
      () => `/principals${queryString(r, cursors)}`,
      () => `/permissions${queryString(r, cursors)}`,
      () => `/headwaiter${queryString(r, cursors)}`,
      () => `/messages/${pathParameter(r)}${queryString(r, cursors)}`,
      () => `/principals/${pathParameter(r)}${queryString(r, cursors)}`,
      () => `/sinks/${pathParameter(r)}/dead-letters${queryString(r, cursors)}`,
    ];
    for (let i = 0; i < fuzzCases(200); i++) {
      const path = r.pick(routes)();
      const token = r.int(3) === 0 ? deviceToken : t.adminToken;
      // The stream answers 200 and stays open when its filters are valid: not fuzzed here.
      if (path.startsWith('/messages/stream')) continue;
      // A connection closed without an answer fails here, naming the request.
      const res = await t.api('GET', path, { token }).catch((err: Error) => {
        throw new Error(`GET ${path.slice(0, 300)}: ${err.message} (${String((err.cause as Error | undefined)?.message)}) — replay with NITROGEN_FUZZ_SEED=${r.seed}`);
      });
      withSeed(r, () => assertWellFormed(res, `GET ${path.slice(0, 200)}`));
    }
    assertPrototypeClean();
    await assertServesNormalDevice(t);
  });
});
