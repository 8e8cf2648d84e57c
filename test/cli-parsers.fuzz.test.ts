// The CLI's two parsers of text it is handed: the CSV of `principals import` (cli/csv.ts) and the
// JSON walker that places `config check`'s problems in the file (cli/json-position.ts). Each is
// checked against a writer of the same format on random inputs full of what trips a parser
// (quotes, separators and line breaks inside fields; keys that repeat at other depths; any
// indentation), and the CSV parser on mangled bytes, where it must answer or refuse with a usage
// error, never throw anything else.
import assert from 'node:assert/strict';
import { parseCsv } from '../cli/csv.js';
import { CliError } from '../cli/exit-codes.js';
import { locate } from '../cli/json-position.js';
import { fuzzCases, fuzzSeed, Random, withSeed } from './helpers/fuzz.js';

const PIECES = ['a', 'device', ' ', ',', '"', '""', '\n', '\r\n', '\r', ';', 'é', '🚗', 'x y', ''];

function field(r: Random): string {
  return Array.from({ length: r.int(5) }, () => r.pick(PIECES)).join('');
}

/** RFC 4180 as a spreadsheet writes it: fields with a separator, quote or line break quoted, quotes doubled. */
function csvField(value: string, r: Random): string {
  return /[",\r\n]/.test(value) || r.int(5) === 0 ? `"${value.replace(/"/g, '""')}"` : value;
}

describe('fuzz: the CLI parsers', () => {
  it('CSV: what is written is read back, each row with the line it starts on', () => {
    const r = new Random(fuzzSeed(0xc5a1));
    for (let n = 0; n < fuzzCases(300); n++) {
      withSeed(r, () => {
        const width = 2 + r.int(4);
        const records = Array.from({ length: 1 + r.int(8) }, () => Array.from({ length: width }, () => field(r)));
        let text = '';
        let line = 1;
        const starts: number[] = [];
        for (const record of records) {
          if (r.int(6) === 0) {
            // a blank line, skipped
            text += '\n';
            line++;
          }
          starts.push(line);
          const written = record.map((f) => csvField(f, r)).join(',');
          text += written + (r.int(2) ? '\r\n' : '\n');
          line += 1 + (written.match(/\r\n|\r|\n/g)?.length ?? 0);
        }
        if (r.int(3) === 0) text = text.replace(/\r?\n$/, ''); // no line break at the end
        const { header, rows } = parseCsv(text);
        assert.deepEqual(
          header,
          records[0]!.map((h) => h.trim().toLowerCase()),
        );
        assert.deepEqual(
          rows.map((row) => row.cells),
          records.slice(1),
        );
        assert.deepEqual(
          rows.map((row) => row.line),
          starts.slice(1),
        );
      });
    }
  });

  it('CSV: mangled input is read or refused as a usage error, in bounded time', () => {
    const r = new Random(fuzzSeed(0xc5a2));
    const seed = Buffer.from('type,id,name,tags\r\ndevice,"car, 1","a ""b""",eu;fleet\napp,x,"multi\nline",\n');
    for (let n = 0; n < fuzzCases(2000); n++) {
      const input = r.mutate(seed).toString('utf8');
      withSeed(r, () => {
        try {
          const { rows } = parseCsv(input);
          for (const row of rows) assert.ok(row.cells.length <= 64 && row.line >= 2);
        } catch (err) {
          assert.ok(err instanceof CliError && err.exit === 'usage', String(err));
        }
      });
    }
    assert.throws(() => parseCsv(Array.from({ length: 70 }, () => 'x').join(',')), /more than 64 fields/);
  });

  it('JSON positions: every path of a document points at its key or element, at any indentation', () => {
    const r = new Random(fuzzSeed(0x1507));
    const KEYS = ['store', 'sinks', 'options', 'url', 'a"b', 'é', 'use', '0'];
    const value = (depth: number): unknown => {
      if (depth === 0 || r.int(4) === 0) return r.pick([1, -2.5e3, 'text', 'with "quotes" and \\', true, null, '{[]}']);
      if (r.int(2)) return Array.from({ length: r.int(4) }, () => value(depth - 1));
      return Object.fromEntries(Array.from({ length: r.int(4) }, () => [r.pick(KEYS), value(depth - 1)]));
    };
    for (let n = 0; n < fuzzCases(300); n++) {
      withSeed(r, () => {
        const doc = value(5);
        const text = JSON.stringify(doc, null, r.pick([0, 2, '\t']));
        // Every path in the document, and where its key or element must be.
        const paths: Array<{ path: string[]; starts: string }> = [];
        const walk = (v: unknown, path: string[]) => {
          if (typeof v !== 'object' || v === null) return;
          for (const [k, child] of Object.entries(v)) {
            paths.push({ path: [...path, k], starts: Array.isArray(v) ? JSON.stringify(child)[0]! : `${JSON.stringify(k)}:` });
            walk(child, [...path, k]);
          }
        };
        walk(doc, []);
        for (const { path, starts } of paths) {
          const at = locate(text, path);
          assert.ok(at, `no position for ${path.join('.')}`);
          const offset =
            text
              .split('\n')
              .slice(0, at.line - 1)
              .reduce((sum, l) => sum + l.length + 1, 0) +
            at.column -
            1;
          assert.ok(text.slice(offset).startsWith(starts), `${path.join('.')} at ${at.line}:${at.column} in\n${text}`);
        }
        // A path that is not there points at the deepest part that is: the root, for a key it lacks.
        assert.deepEqual(locate(text, ['no such key']), { line: 1, column: 1 });
      });
    }
  });
});
