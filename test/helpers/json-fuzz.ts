import assert from 'node:assert/strict';
import type { Random } from './fuzz.js';
import type { ApiResponse } from './server.js';

/**
 * Random JSON texts for the REST fuzz tests, written as text rather than through
 * JSON.stringify so they can hold what a hostile client sends and a serializer never makes:
 * duplicate keys, escaped lone surrogates, numbers beyond double range, odd whitespace.
 */

/** Numbers as written: beyond double range, -0, unsafe integers, exponents. */
const NUMBERS = ['0', '-0', '1', '-1.5', '0.1', '1e400', '-1e400', '1e-400', '2e308', '123456789012345678901234567890', '9007199254740993', '1E2', '-1.7976931348623157e308', '5e-324'];

/** String literals: escapes, lone surrogates, NUL, line separators, BOM, bidi controls, brackets. */
const STRINGS = [
  '""',
  '"a"',
  '"\\ud800"',
  '"\\udfff\\ud800"',
  '"\\u0000"',
  '"\u2028\u2029"',
  '"\ufeff"',
  '"😀"',
  '"\\ud83d\\ude00"',
  '"\u202eevil"',
  '"\\"[[[{{{"',
  '"\\\\"',
  '"\\/"',
  '"a,b"',
  '"telemetry"',
  '"car-1"',
  '"__proto__"',
  '"2026-06-01T10:00:00Z"',
  '"1970-01-01T00:00:00+01:00"',
  '"9999-12-31T23:59:59.999Z"',
  '"2026-02-30"',
  `"${'x'.repeat(300)}"`,
  `"${'é'.repeat(70)}"`,
];

/** Keys: every field name the API knows, and those that reach for an object's prototype. */
const KEYS = [
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'hasOwnProperty',
  'valueOf',
  '',
  ' ',
  'é',
  '\\u0000',
  'id',
  'type',
  'from',
  'to',
  'ts',
  'body',
  'tags',
  'responseTo',
  'expires',
  'issuedTo',
  'principalFor',
  'action',
  'authorized',
  'priority',
  'secret',
  'password',
  'name',
  'enabled',
];

const SPACE = ['', '', '', ' ', '\n', '\t', '\r\n  '];

/** A valid JSON text nesting at most `maxDepth`; with `deep`, sometimes far more (deep texts are part of the attack). */
export function jsonText(r: Random, maxDepth = 6, deep = true): string {
  if (deep && r.int(40) === 0) return deepText(r);
  return value(r, maxDepth);
}

function value(r: Random, depth: number): string {
  const kind = depth <= 0 ? r.int(3) : r.int(6);
  const ws = () => r.pick(SPACE);
  switch (kind) {
    case 0:
      return r.pick(NUMBERS);
    case 1:
      return r.pick(STRINGS);
    case 2:
      return r.pick(['true', 'false', 'null']);
    case 3: {
      const items = Array.from({ length: r.int(5) }, () => ws() + value(r, depth - 1) + ws());
      return `[${items.join(',')}]`;
    }
    default: {
      const members = Array.from({ length: r.int(6) }, () => `${ws()}"${r.pick(KEYS)}"${ws()}:${ws()}${value(r, depth - 1)}${ws()}`);
      return `{${members.join(',')}}`;
    }
  }
}

/** Arrays or objects nested around and past the default limit (64), up to 50,000 deep. */
export function deepText(r: Random): string {
  const depth = r.pick([63, 64, 65, 100, 1000, 5000, 50_000]);
  if (r.int(2) === 0) return '['.repeat(depth) + ']'.repeat(depth);
  return '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
}

/** Valid values of the envelope's optional fields, so that many envelopes get past validation. */
const VALID_FIELDS: Record<string, string[]> = {
  id: ['"fuzz-1"', '"a:b~c.d_e-f"'],
  ts: ['"2026-06-01T10:00:00Z"', '"2026-06-01T10:00:00.123456789+05:30"', '"9999-12-31T23:59:59.999Z"'],
  tags: ['["eu"]', '["é","😀","\\ud800"]', '[]'],
  responseTo: ['["m-1","m-2"]'],
  expires: ['"2030-01-01T00:00:00+02:00"'],
};

/**
 * An envelope-shaped text: type and optional fields mostly valid (so the text reaches storage and
 * encoding), sometimes random; a body that is often deep, the attack that once made pages fail.
 */
export function envelopeText(r: Random): string {
  const fields = ['"type":' + (r.int(4) > 0 ? '"telemetry"' : r.pick(['"t.1_x-y"', ...STRINGS, ...NUMBERS]))];
  if (r.int(2) === 0) fields.push(`"body":${r.int(3) === 0 ? deepText(r) : jsonText(r)}`);
  for (const [key, valid] of Object.entries(VALID_FIELDS)) {
    if (r.int(3) === 0) fields.push(`"${key}":${r.int(4) > 0 ? r.pick(valid) : value(r, 2)}`);
  }
  if (r.int(10) === 0) fields.push(`"${r.pick(KEYS)}":${value(r, 2)}`);
  return `{${fields.join(',')}}`;
}

/** Every REST answer, whatever was asked: never a 5xx, and an error always in the API's shape. */
export function assertWellFormed(res: ApiResponse, what: string): void {
  assert.ok(res.status < 500, `${what} answered ${res.status}: ${JSON.stringify(res.body).slice(0, 300)}`);
  if (res.status >= 400) {
    assert.equal(typeof res.body, 'object', `${what} answered ${res.status} without a JSON body: ${String(res.body).slice(0, 200)}`);
    assert.match(res.body?.error?.code ?? '', /^NITROGEN_ERR_[A-Z_]+$/, `${what}: error code`);
    assert.equal(typeof res.body.error.message, 'string', `${what}: error message`);
  }
}

/** What a fuzz case must not do to the process: add keys to Object.prototype. */
export function assertPrototypeClean(): void {
  assert.deepEqual(Object.getOwnPropertyNames(Object.prototype).sort(), PROTOTYPE_KEYS, 'Object.prototype was changed');
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
}

const PROTOTYPE_KEYS = Object.getOwnPropertyNames(Object.prototype).sort();
