// Fuzzes the envelope (docs/api.md, "The message envelope") against a live server. Envelopes
// valid by construction, alone or in batches, are stored and read back exactly as normalized;
// an envelope with one field made invalid is refused with the code and `details.field` naming
// that field, and nothing of its batch is stored.
import assert from 'node:assert/strict';
import { assertServesNormalDevice } from './helpers/abuse.js';
import { fuzzCases, fuzzSeed, Random, withSeed } from './helpers/fuzz.js';
import { assertWellFormed, jsonText } from './helpers/json-fuzz.js';
import { startServer, type TestServer } from './helpers/server.js';

const SENDER = 'fuzz-sender';
const MAX_TIME = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

function chars(r: Random, alphabet: string, min: number, max: number): string {
  return Array.from({ length: min + r.int(max - min + 1) }, () => alphabet[r.int(alphabet.length)]).join('');
}

const WORD = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-';
const TAG_CHARS = `${WORD} é😀\u2028"\\/[]{}:;`;

/** An ISO-8601 time the server accepts, and what it normalizes it to. */
function time(r: Random): { text: string; normalized: string } {
  const ms = r.int(2) === 0 ? Date.now() + r.int(1e9) : Math.floor(r.next() * MAX_TIME);
  const iso = new Date(ms).toISOString();
  if (r.int(3) > 0) return { text: iso, normalized: iso };
  // The same instant with an offset of whole hours; the server normalizes it to UTC.
  const hours = r.int(13) * (ms > 14 * 3_600_000 && ms < MAX_TIME - 14 * 3_600_000 && r.int(2) === 0 ? -1 : 1);
  const local = new Date(ms + hours * 3_600_000).toISOString().slice(0, -1);
  const offset = `${hours < 0 ? '-' : '+'}${String(Math.abs(hours)).padStart(2, '0')}:00`;
  return ms + hours * 3_600_000 <= MAX_TIME ? { text: local + offset, normalized: iso } : { text: iso, normalized: iso };
}

interface Built {
  envelope: Record<string, unknown>;
  /** The message the server must store, without `id` when the server assigns it. */
  expected: Record<string, unknown>;
}

/** A valid envelope (docs/api.md table), and the normalized message it must become. */
function validEnvelope(r: Random, serial: number): Built {
  const envelope: Record<string, unknown> = { type: chars(r, WORD, 1, 64) };
  const expected: Record<string, unknown> = { type: envelope.type, from: SENDER };
  if (r.int(2) === 0) envelope.id = expected.id = `${serial}-${chars(r, `${WORD}:~`, 1, 100)}`;
  if (r.int(3) === 0) envelope.from = SENDER;
  if (r.int(2) === 0) {
    const { text, normalized } = time(r);
    envelope.ts = text;
    expected.ts = normalized;
  }
  if (r.int(4) > 0) {
    // Bodies as JSON values (parsed, so prototype keys are own keys, and 1e400 is Infinity sent as null).
    const body = JSON.parse(jsonText(r, 4, false));
    envelope.body = body;
    expected.body = JSON.parse(JSON.stringify(body));
  } else {
    expected.body = null;
  }
  if (r.int(3) === 0) envelope.tags = expected.tags = Array.from({ length: r.int(33) }, () => chars(r, TAG_CHARS, 1, 64).replaceAll(',', ''));
  if (r.int(4) === 0) envelope.responseTo = expected.responseTo = Array.from({ length: 1 + r.int(100) }, () => chars(r, WORD, 1, 128));
  if (r.int(4) === 0) {
    const { text, normalized } = time(r);
    envelope.expires = text;
    expected.expires = normalized;
  }
  return { envelope, expected };
}

/** One field made invalid, with the status and code its refusal carries. */
const CORRUPTIONS: Array<{ field: string; values: unknown[]; status: number; code: string }> = [
  { field: 'type', values: ['', 'a b', 'x'.repeat(65), 42, null, ['telemetry'], 'tele/metry'], status: 400, code: 'NITROGEN_ERR_VALIDATION' },
  { field: 'id', values: ['', 'x'.repeat(129), 'a/b', 5, 'a b', '#'], status: 400, code: 'NITROGEN_ERR_VALIDATION' },
  { field: 'ts', values: ['2026-02-30T00:00:00Z', 'yesterday', '2026-06-01T10:00:00', '1969-12-31T23:59:59Z', 1_750_000_000_000, '10000-01-01T00:00:00Z'], status: 400, code: 'NITROGEN_ERR_VALIDATION' },
  { field: 'tags', values: ['eu', [1], ['a,b'], [''], Array(33).fill('t'), ['x'.repeat(65)]], status: 400, code: 'NITROGEN_ERR_VALIDATION' },
  { field: 'responseTo', values: [Array(101).fill('m'), 'm', [null]], status: 400, code: 'NITROGEN_ERR_VALIDATION' },
  { field: 'expires', values: ['never', '2026-06-01T25:00:00Z', 0], status: 400, code: 'NITROGEN_ERR_VALIDATION' },
  { field: 'to', values: ['a b', '', 7, 'x'.repeat(129)], status: 400, code: 'NITROGEN_ERR_VALIDATION' },
  { field: 'from', values: ['someone-else', '', 1], status: 403, code: 'NITROGEN_ERR_SENDER_MISMATCH' },
  { field: 'speed', values: [1], status: 400, code: 'NITROGEN_ERR_VALIDATION' },
  { field: '__proto__', values: [{ polluted: true }], status: 400, code: 'NITROGEN_ERR_VALIDATION' },
];

describe('fuzz: message envelopes', function () {
  this.timeout(0);
  let t: TestServer;
  let token: string;

  before(async () => {
    t = await startServer();
    const [sender] = await t.register([{ type: 'device', id: SENDER }]);
    token = await t.token(sender!.id, sender!.secret);
  });
  after(() => t?.stop());

  it('stores valid envelopes, alone and in batches, and reads each back as normalized', async () => {
    const r = new Random(fuzzSeed(0xe1e0_0001));
    for (let i = 0; i < fuzzCases(60); i++) {
      const built = Array.from({ length: r.int(4) === 0 ? 2 + r.int(5) : 1 }, (_, k) => validEnvelope(r, i * 10 + k));
      const batch = built.length > 1 || r.int(4) === 0;
      const res = await t.api('POST', '/messages', { token, body: batch ? built.map((b) => b.envelope) : built[0]!.envelope });
      withSeed(r, () => {
        assert.equal(res.status, 201, `case ${i}: ${JSON.stringify(res.body).slice(0, 300)}`);
        assert.equal(res.body.messages.length, built.length);
      });
      for (let k = 0; k < built.length; k++) {
        const answered = res.body.messages[k];
        const stored = await t.api('GET', `/messages/${encodeURIComponent(answered.id)}`, { token });
        withSeed(r, () => {
          const { expected } = built[k]!;
          assert.deepEqual(answered, { ts: answered.ts, id: answered.id, ...expected }, `case ${i}.${k}: the answer`);
          if (expected.ts === undefined) assert.ok(Math.abs(Date.parse(answered.ts) - Date.now()) < 60_000, 'server time');
          assert.equal(stored.status, 200);
          assert.deepEqual(stored.body.message, answered, `case ${i}.${k}: read back`);
        });
      }
    }
    await assertServesNormalDevice(t);
  });

  it('refuses an envelope with one invalid field, naming it, and stores nothing of its batch', async () => {
    const r = new Random(fuzzSeed(0xe1e0_0002));
    for (let i = 0; i < fuzzCases(60); i++) {
      const built = Array.from({ length: r.int(3) === 0 ? 2 + r.int(4) : 1 }, (_, k) => validEnvelope(r, 1_000_000 + i * 10 + k));
      for (const [k, b] of built.entries()) b.envelope.id = `refused-${i}-${k}`;
      const bad = r.int(built.length);
      const corruption = r.pick(CORRUPTIONS);
      const value = r.pick(corruption.values);
      // Own property even for "__proto__", as a client's JSON would make it.
      Object.defineProperty(built[bad]!.envelope, corruption.field, { value, enumerable: true, configurable: true, writable: true });
      const batch = built.length > 1;
      const res = await t.api('POST', '/messages', { token, body: batch ? built.map((b) => b.envelope) : built[0]!.envelope });
      withSeed(r, () => {
        assertWellFormed(res, `case ${i}`);
        assert.equal(res.status, corruption.status, `case ${i}: ${corruption.field}=${JSON.stringify(value)?.slice(0, 60)} → ${JSON.stringify(res.body).slice(0, 200)}`);
        assert.equal(res.body.error.code, corruption.code);
        assert.equal(res.body.error.details.field, batch ? `[${bad}].${corruption.field}` : corruption.field);
      });
      for (let k = 0; k < built.length; k++) {
        const id = `refused-${i}-${k}`;
        const res = await t.api('GET', `/messages/${id}`, { token });
        withSeed(r, () => assert.equal(res.status, 404, `case ${i}: '${id}' of a refused batch was stored`));
      }
    }
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    await assertServesNormalDevice(t);
  });
});
