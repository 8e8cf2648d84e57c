import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

// The direction of imports between the folders (docs/architecture.md, "Layers and the dependency
// rule"): the arrows point inwards to core/, the AMQP client and the client library stand alone, and
// what demonstrates or measures the project does not lean on what tests it. Imports are read with
// TypeScript's own pre-processor, so `import type`, `export … from` and `import()` (also in a type) count.

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface Import {
  /** The importing file, from the project root. */
  file: string;
  /** The specifier as written. */
  specifier: string;
  /** For a relative specifier, the file it names from the project root; else undefined (a package). */
  target?: string;
}

/** Every import of every TypeScript file under `folder` (build outputs and installed packages aside). */
function importsUnder(folder: string): Import[] {
  const found: Import[] = [];
  for (const entry of readdirSync(join(ROOT, folder), { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts')) continue;
    const path = join(entry.parentPath, entry.name);
    const file = relative(ROOT, path);
    if (/(^|\/)(dist|node_modules)\//.test(file)) continue;
    for (const { fileName: specifier } of ts.preProcessFile(readFileSync(path, 'utf8'), true, true).importedFiles) {
      found.push(specifier.startsWith('.') ? { file, specifier, target: relative(ROOT, resolve(entry.parentPath, specifier)) } : { file, specifier });
    }
  }
  assert.ok(found.length > 0, `${folder} has imports to check`);
  return found;
}

/** Our own packages, as another package would import them. */
const OURS = /^(nitrogen|@nitrogen\/[^/]+)(\/|$)/;

/** The first folder of a path (`core`), or the adapter's (`adapters/sqlite`). */
function area(path: string): string {
  const [top, sub] = path.split('/');
  return top === 'adapters' || top === 'samples' ? `${top}/${sub}` : top!;
}

function show(wrong: Import[]): string {
  return wrong.map(({ file, specifier }) => `${file} imports '${specifier}'`).join('\n');
}

describe('the direction of imports between the folders', () => {
  it('keeps core free of adapters and plugins: core imports only core and packages of others', () => {
    const wrong = importsUnder('core').filter(({ specifier, target }) => (target !== undefined ? !target.startsWith('core/') : OURS.test(specifier)));
    assert.equal(show(wrong), '');
  });

  it('has each adapter import no other: core by path, the AMQP client only by its package name', () => {
    const wrong = importsUnder('adapters').filter(({ file, target }) => {
      if (file.startsWith('adapters/amqp/') || target === undefined) return false;
      return target.startsWith('adapters/') ? area(target) !== area(file) : !target.startsWith('core/');
    });
    assert.equal(show(wrong), '');
  });

  it("has the plugins talk to the ports: no adapter, no other plugin (the portal's browser app: the client library)", () => {
    const wrong = importsUnder('plugins').filter(({ file, specifier, target }) => {
      // The portal's app runs in the browser and reaches the server over the wire, as any app does.
      if (target === undefined) return OURS.test(specifier) && !(file.startsWith('plugins/portal/app/') && specifier === '@nitrogen/client/browser');
      return target.startsWith('plugins/') ? target.split('/')[1] !== file.split('/')[1] : !target.startsWith('core/');
    });
    assert.equal(show(wrong), '');
  });

  it('keeps the AMQP client a library of its own: adapters/amqp imports nothing of ours', () => {
    const wrong = importsUnder('adapters/amqp').filter(({ specifier, target }) => (target !== undefined ? !target.startsWith('adapters/amqp/') : OURS.test(specifier)));
    assert.equal(show(wrong), '');
  });

  it('keeps the client library apart from the server: client/ imports nothing of it', () => {
    const wrong = importsUnder('client').filter(({ specifier, target }) => (target !== undefined ? !target.startsWith('client/') : OURS.test(specifier) && !specifier.startsWith('@nitrogen/client')));
    assert.equal(show(wrong), '');
  });

  it('keeps each sample standing alone: nothing from bench/ or test/', () => {
    const wrong = importsUnder('samples').filter(({ target }) => target !== undefined && /^(bench|test)\//.test(target));
    assert.equal(show(wrong), '');
  });

  it('has the samples import Nitrogen by its package name, as an application would: no relative import leaves a sample', () => {
    const imports = importsUnder('samples');
    const wrong = imports.filter(({ file, target }) => target !== undefined && area(target) !== area(file));
    assert.equal(show(wrong), '');
    const named = new Set(imports.filter(({ specifier }) => specifier === 'nitrogen' || specifier === 'nitrogen/testing').map(({ file }) => file));
    assert.ok(named.size >= 2, `the samples that build a server import 'nitrogen' (found in: ${[...named].join(', ')})`);
  });

  it('keeps the benchmarks off the test helpers', () => {
    const wrong = importsUnder('bench').filter(({ target }) => target?.startsWith('test/'));
    assert.equal(show(wrong), '');
  });

  it('finds what it looks for: a planted import of each kind is seen', () => {
    const text = "import type { A } from '../adapters/sqlite/index.js';\nexport { b } from '../plugins/mqtt/index.js';\nconst c = await import('@nitrogen/amqp');\ntype D = import('../bench/lib/load.js').Load;\n";
    const seen = ts.preProcessFile(text, true, true).importedFiles.map((f) => f.fileName);
    assert.deepEqual(seen.sort(), ['../adapters/sqlite/index.js', '../bench/lib/load.js', '../plugins/mqtt/index.js', '@nitrogen/amqp'].sort());
  });
});
