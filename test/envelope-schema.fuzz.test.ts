// The envelope is validated on the hot path by a hand-written parser (core/message.ts,
// parseEnvelope) and documented by a zod schema (core/schemas/envelope.ts), which the OpenAPI
// document shows. This fuzz holds the two to the same answers: for random and mutated envelopes,
// the schema accepts exactly what the parser accepts, and normalizes times the same way.
import assert from 'node:assert/strict';
import { isNitrogenError } from '../core/errors.js';
import { parseEnvelope } from '../core/message.js';
import { Envelope } from '../core/schemas/envelope.js';
import { fuzzCases, fuzzSeed, Random, withSeed } from './helpers/fuzz.js';
import { envelopeText, jsonText } from './helpers/json-fuzz.js';

const SENDER = 'car-1';

/** What the parser answers: the message, or the code it refused with. */
function parse(value: unknown): { ok: true; ts: string; expires?: string } | { ok: false; code: string } {
  try {
    const message = parseEnvelope(value, { sender: SENDER, now: Date.now() });
    return { ok: true, ts: message.ts, ...(message.expires === undefined ? {} : { expires: message.expires }) };
  } catch (err) {
    if (!isNitrogenError(err)) throw err;
    return { ok: false, code: err.code };
  }
}

describe('fuzz: the envelope schema agrees with the envelope parser', function () {
  this.timeout(0);

  it('accepts and refuses the same envelopes, and normalizes their times alike', () => {
    const r = new Random(fuzzSeed(0xe5c0_0a11));
    let accepted = 0;
    for (let i = 0; i < fuzzCases(2000); i++) {
      const text = r.int(4) === 0 ? jsonText(r, 3, false) : envelopeText(r);
      const value: unknown = JSON.parse(r.int(3) === 0 ? text.replace('"type":', `"from":${JSON.stringify(r.pick([SENDER, 'car-2', 'bad/id']))},"type":`) : text);
      const byParser = parse(value);
      // `from` must be the authenticated sender: a rule on the request, not on the envelope's shape.
      if (!byParser.ok && byParser.code === 'NITROGEN_ERR_SENDER_MISMATCH') continue;
      const bySchema = Envelope.safeParse(value);
      withSeed(r, () => {
        assert.equal(bySchema.success, byParser.ok, `${text.slice(0, 200)}: schema ${bySchema.success ? 'accepts' : `refuses (${bySchema.error?.issues[0]?.message})`}, parser ${byParser.ok ? 'accepts' : 'refuses'}`);
        if (bySchema.success && byParser.ok) {
          if (bySchema.data.ts !== undefined) assert.equal(bySchema.data.ts, byParser.ts);
          assert.equal(bySchema.data.expires, byParser.expires);
        }
      });
      if (byParser.ok) accepted++;
    }
    // Both answers must be exercised, or the agreement says little.
    assert.ok(accepted > fuzzCases(2000) / 20, `only ${accepted} envelopes were valid`);
  });
});
