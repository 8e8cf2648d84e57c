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
  '""', '"a"', '"\\ud800"', '"\\udfff\\ud800"', '"\\u0000"', '"\u2028\u2029"', '"\ufeff"', '"😀"', '"\\ud83d\\ude00"', '"\u202eevil"',
  '"\\"[[[{{{"', '"\\\\"', '"\\/"', '"a,b"', '"telemetry"', '"car-1"', '"__proto__"', '"2026-06-01T10:00:00Z"', '"1970-01-01T00:00:00+01:00"',
  '"9999-12-31T23:59:59.999Z"', '"2026-02-30"', `"${'x'.repeat(300)}"`, `"${'é'.repeat(70)}"`,
];

/** Keys: every field name the API knows, and those that reach for an object's prototype. */
const KEYS = [
  '__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf', '', ' ', 'é', '\\u0000',
  'id', 'type', 'from', 'to', 'ts', 'body', 'tags', 'responseTo', 'expires',
  'issuedTo', 'principalFor', 'action', 'authorized', 'priority', 'secret', 'password', 'name', 'enabled',
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

/** An envelope-shaped text: mostly the right fields, with random values. */
export function envelopeText(r: Random): string {
  const fields = ['"type":' + r.pick(['"telemetry"', '"t.1_x-y"', ...STRINGS, ...NUMBERS])];
  for (const key of ['id', 'to', 'ts', 'body', 'tags', 'responseTo', 'expires', 'from', r.pick(KEYS)]) {
    if (r.int(3) === 0) fields.push(`"${key}":${key === 'body' ? jsonText(r) : value(r, 2)}`);
  }
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
