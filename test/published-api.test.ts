import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { tempDir } from './helpers/temp.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url)); // dist/test → repository
const MOCHA = join(ROOT, 'node_modules/mocha/bin/mocha.js');
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc');
const run = promisify(execFile);

/** Runs a command; resolves with its exit code and output, whatever the code. */
async function exec(file: string, args: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [file, ...args], { cwd, maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/**
 * A package of its own outside the repository, with Nitrogen installed as a dependency
 * (node_modules/nitrogen links to the repository): what a third-party adapter's author has.
 */
function thirdPartyPackage(files: Record<string, string>) {
  const dir = tempDir('nitrogen-third-party-');
  mkdirSync(join(dir.path, 'node_modules'));
  symlinkSync(ROOT, join(dir.path, 'node_modules/nitrogen'), 'dir');
  writeFileSync(join(dir.path, 'package.json'), JSON.stringify({ name: 'nitrogen-store-example', type: 'module', private: true, dependencies: { nitrogen: '*' } }));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir.path, name), text);
  return dir;
}

/** Mocha's JSON report of one spec file. */
async function mocha(cwd: string, spec: string): Promise<{ code: number; report: { stats: { passes: number; failures: number }; passes: Array<{ fullTitle: string }>; failures: Array<{ fullTitle: string }> } }> {
  const { code, stdout, stderr } = await exec(MOCHA, ['--no-config', '--reporter', 'json', '--timeout', '20000', spec], cwd);
  try {
    return { code, report: JSON.parse(stdout) };
  } catch {
    throw new Error(`mocha did not report (exit ${code}): ${stderr || stdout}`);
  }
}

const MEMORY_STORE_SPEC = `
import { MemoryStore } from 'nitrogen';
import { storeConformance } from 'nitrogen/testing';

storeConformance('third-party memory', { open: async () => new MemoryStore(), close: async () => {} });
`;

/** A store that loses the last message of every batch of several: the suite must catch it. */
const LOSSY_STORE_SPEC = `
import { MemoryStore } from 'nitrogen';
import { storeConformance } from 'nitrogen/testing';

class LossyStore extends MemoryStore {
  append(batch) { return super.append(batch.length > 1 ? batch.slice(0, -1) : batch); }
}
storeConformance('lossy', { open: async () => new LossyStore(), close: async () => {} });
`;

const TYPED_ADAPTER = `
import { definePlugin, MemoryStore, type Message } from 'nitrogen';
import { storeConformance, type StoreHarness } from 'nitrogen/testing';

export class CountingStore extends MemoryStore {
  appended = 0;
  override async append(batch: Message[]): Promise<void> {
    this.appended += batch.length;
    await super.append(batch);
  }
}

export default definePlugin({ name: 'counting', kind: 'store', create: () => new CountingStore() });

const harness: StoreHarness = { open: async () => new CountingStore(), close: async () => {} };
storeConformance('counting', harness);

// @ts-expect-error the published types hold a plugin's create to its kind
definePlugin({ name: 'wrong', kind: 'sink', create: () => new CountingStore() });
`;

describe('the published API (package.json exports)', function () {
  this.timeout(60_000);

  it("lets a third-party package run a port's conformance suite from nitrogen/testing, with its own mocha", async () => {
    const dir = thirdPartyPackage({ 'memory-store.test.js': MEMORY_STORE_SPEC });
    try {
      const { code, report } = await mocha(dir.path, 'memory-store.test.js');
      assert.equal(code, 0, JSON.stringify(report.failures.map((f) => f.fullTitle)));
      assert.equal(report.stats.failures, 0);
      assert.ok(report.stats.passes >= 10, `${report.stats.passes} tests passed`);
      assert.ok(report.passes.every((t) => t.fullTitle.startsWith('Store conformance: third-party memory ')));
    } finally {
      dir.remove();
    }
  });

  it('fails the suite for a store that loses messages', async () => {
    const dir = thirdPartyPackage({ 'lossy-store.test.js': LOSSY_STORE_SPEC });
    try {
      const { code, report } = await mocha(dir.path, 'lossy-store.test.js');
      assert.notEqual(code, 0);
      assert.ok(report.stats.failures > 0);
    } finally {
      dir.remove();
    }
  });

  it('type-checks a third-party TypeScript adapter against the published declarations', async () => {
    const dir = thirdPartyPackage({
      'adapter.ts': TYPED_ADAPTER,
      'tsconfig.json': JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', strict: true, noImplicitOverride: true, noEmit: true, skipLibCheck: true, types: [] }, files: ['adapter.ts'] }),
    });
    try {
      const { code, stdout } = await exec(TSC, ['-p', '.'], dir.path);
      assert.equal(code, 0, stdout);
    } finally {
      dir.remove();
    }
  });

  it('builds the package for `npm start` from its own sources: no test, benchmark or sample, no mocha globals', async () => {
    // A composite project fails to build if it imports a file it does not list (TS6307): its list is its whole program.
    const { code, stdout } = await exec(TSC, ['-p', 'tsconfig.build.json', '--showConfig'], ROOT);
    assert.equal(code, 0, stdout);
    const { files, compilerOptions } = JSON.parse(stdout) as { files: string[]; compilerOptions: { types: string[] } };
    assert.ok(files.includes('./index.ts') && files.includes('./core/server.ts'), 'the package sources are in');
    assert.deepEqual(
      files.filter((f) => /^\.\/(test|bench|samples)\//.test(f)),
      [],
    );
    assert.deepEqual(compilerOptions.types, ['node']);
  });
});
