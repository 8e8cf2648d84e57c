// The package stands on its own: every import in its sources, tests and
// benchmarks is a Node built-in, a file inside the package, or a package it
// declares (its runtime code: `dependencies` only). Nothing of the
// application around it may creep in.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

// dist/test/self-contained.test.js → the package root.
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
};

/** Module specifiers of static imports, re-exports and dynamic imports in TypeScript source. */
export function specifiers(source: string): string[] {
  const out: string[] = [];
  const patterns = [/\b(?:import|export)\s[^'"`;]*?\bfrom\s*['"]([^'"]+)['"]/g, /\bimport\s*['"]([^'"]+)['"]/g, /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g];
  for (const re of patterns) for (const m of source.matchAll(re)) out.push(m[1]);
  return out;
}

/** Why `spec`, imported from `file`, is not allowed; undefined if it is. */
export function violation(file: string, spec: string, allowed: ReadonlySet<string>, packageRoot = root): string | undefined {
  if (spec.startsWith('node:') || builtinModules.includes(spec)) return undefined;
  if (spec.startsWith('.')) {
    const target = resolve(dirname(file), spec);
    return target === packageRoot || target.startsWith(packageRoot + sep) ? undefined : `${spec} leaves the package`;
  }
  const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0];
  return allowed.has(name) ? undefined : `${name} is not a declared dependency here`;
}

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => join(e.parentPath, e.name));
}

describe('@nitrogen/amqp is self-contained', () => {
  const runtime = new Set(Object.keys(manifest.dependencies ?? {}));
  const everything = new Set([...runtime, ...Object.keys(manifest.devDependencies ?? {})]);

  it('its runtime code imports only Node built-ins, its own files and its dependencies', () => {
    const files = sources(join(root, 'src'));
    assert.ok(files.length > 10, `found ${files.length} source files`);
    const bad = files
      .flatMap((f) => specifiers(readFileSync(f, 'utf8')).map((s) => [f, s, violation(f, s, runtime)] as const))
      .filter(([, , why]) => why !== undefined)
      .map(([f, s, why]) => `${relative(root, f)}: ${s} (${why})`);
    assert.deepEqual(bad, []);
  });

  it('its tests and benchmarks import only Node built-ins, its own files and its declared (dev) dependencies', () => {
    const files = [...sources(join(root, 'test')), ...sources(join(root, 'bench'))];
    assert.ok(files.length > 5);
    const bad = files
      .flatMap((f) => specifiers(readFileSync(f, 'utf8')).map((s) => [f, s, violation(f, s, everything)] as const))
      .filter(([, , why]) => why !== undefined)
      .map(([f, s, why]) => `${relative(root, f)}: ${s} (${why})`);
    assert.deepEqual(bad, []);
  });

  it('the check itself catches an import from the application and an undeclared package', () => {
    const file = join(root, 'src', 'sample.ts');
    // Keywords spliced in, so this file's own scan does not see these samples.
    const [im, ex] = ['im' + 'port', 'ex' + 'port'];
    const source = [
      `${im} { x } from '../../../core/errors.js';`,
      `${ex} { y } from '../../amqp-sinks/index.js';`,
      `${im} type { Z } from 'zod';`,
      `const m = await ${im}('../../../catalog.js');`,
      `${im} './codec/types.js';`,
      `${im} net from 'node:net';`,
    ].join('\n');
    const found = specifiers(source);
    assert.equal(found.length, 6);
    const flagged = found.filter((s) => violation(file, s, runtime) !== undefined).sort();
    assert.deepEqual(flagged, ['../../../catalog.js', '../../../core/errors.js', '../../amqp-sinks/index.js', 'zod']);
  });
});
