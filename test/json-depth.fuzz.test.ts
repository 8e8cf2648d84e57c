// The depth check (core/json-depth.ts) decides from the text alone, before JSON.parse. Checked
// here, on texts JSON.parse accepts, against another reading of the same text (strings removed
// by a regular expression, then brackets counted) and against the parsed value (which can only
// be shallower: of duplicate keys JSON.parse keeps the last), for random texts full of brackets
// inside strings, escaped quotes and backslashes, at limits small enough that the shortcuts
// (length, counting brackets) and the full scan are all exercised.
import assert from 'node:assert/strict';
import { nestsDeeperThan } from '../core/json-depth.js';
import { fuzzCases, fuzzSeed, Random, withSeed } from './helpers/fuzz.js';
import { jsonText } from './helpers/json-fuzz.js';

/** Depth of a parsed value, without recursion: a scalar is 0, `[]` and `{}` are 1. */
function depthOf(root: unknown): number {
  let deepest = 0;
  const stack: Array<[unknown, number]> = [[root, 0]];
  while (stack.length > 0) {
    const [value, depth] = stack.pop()!;
    if (typeof value !== 'object' || value === null) continue;
    deepest = Math.max(deepest, depth + 1);
    for (const child of Object.values(value)) stack.push([child, depth + 1]);
  }
  return deepest;
}

/** Depth of a valid JSON text: its strings cut out, then the deepest run of open brackets. */
function depthOfText(text: string): number {
  let depth = 0;
  let deepest = 0;
  for (const c of text.replace(/"(?:[^"\\]|\\.)*"/gs, '""')) {
    if (c === '[' || c === '{') deepest = Math.max(deepest, ++depth);
    else if (c === ']' || c === '}') depth--;
  }
  return deepest;
}

/** Texts whose strings are full of what a naive scan would count, nesting up to `depth`. */
function trickyText(r: Random, depth = 1 + r.int(12)): string {
  const strings = ['"["', '"{"', '"\\"["', '"\\\\"', '"\\\\\\"[{"', '"]]]"', '"\\u005b"', '"}{"'];
  if (depth === 0 || r.int(6) === 0) return r.pick(strings);
  const children = Array.from({ length: 1 + r.int(3) }, () => trickyText(r, depth - 1));
  return r.int(2) === 0 ? `[${children.join(',')}]` : `{${children.map((child) => `${r.pick(strings)}:${child}`).join(',')}}`;
}

describe('fuzz: JSON depth from the text', () => {
  it('agrees with the depth of the parsed value on random and tricky texts', () => {
    const r = new Random(fuzzSeed(0xdee9_0001));
    let checked = 0;
    for (let i = 0; i < fuzzCases(3000); i++) {
      const candidates = [jsonText(r, 8), trickyText(r), r.mutate(Buffer.from(jsonText(r, 8))).toString('utf8')];
      for (const text of candidates) {
        let parsed: unknown;
        try {
          parsed = JSON.parse(text);
        } catch {
          // Invalid JSON: any answer will do (the parser refuses the text), but never a throw.
          for (const limit of [0, 1, 3, 64]) nestsDeeperThan(text, limit);
          continue;
        }
        const depth = depthOfText(text);
        withSeed(r, () => assert.ok(depthOf(parsed) <= depth, `the parsed value is deeper than its text: ${JSON.stringify(text.slice(0, 200))}`));
        for (const limit of [0, 1, 2, 3, 5, depth - 1, depth, 64]) {
          if (limit < 0) continue;
          withSeed(r, () => assert.equal(nestsDeeperThan(text, limit), depth > limit, `depth ${depth}, limit ${limit}: ${JSON.stringify(text.slice(0, 200))}`));
          checked++;
        }
      }
    }
    assert.ok(checked > 10 * fuzzCases(3000), 'most cases were valid JSON');
  });
});
