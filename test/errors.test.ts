import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ErrorCodes } from '../core/errors.js';

describe('error codes', () => {
  it('documents every code in docs/errors.md with its status', () => {
    const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
    const rows = new Map<string, string>();
    for (const match of doc.matchAll(/^\| `(NITROGEN_ERR_[A-Z_]+)` \| ([^|]+) \|/gm)) rows.set(match[1]!, match[2]!.trim());
    for (const [code, { status }] of Object.entries(ErrorCodes)) {
      assert.ok(rows.has(code), `${code} is not documented in docs/errors.md`);
      // Configuration and plugin errors happen at start, not over HTTP: documented with '—'.
      if (rows.get(code) !== '—') assert.equal(rows.get(code), String(status), `${code} documented with the wrong status`);
    }
    for (const code of rows.keys()) assert.ok(code in ErrorCodes, `docs/errors.md lists ${code}, which the code does not have`);
  });
});
