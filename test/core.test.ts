import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultCatalog } from '../catalog.js';
import { loadConfig, parseConfig } from '../core/config.js';
import { checkConfig } from '../core/preflight.js';
import { createServer } from '../core/server.js';
import { NitrogenError, isNitrogenError } from '../core/errors.js';
import { GroupCommit } from '../core/group-commit.js';
import { newMessageId, parseEnvelope, type Message } from '../core/message.js';
import { PermissionIndex, evaluate, scope } from '../core/permissions.js';
import type { Permission } from '../core/ports/principal.js';
import { exited } from './helpers/process.js';
import { tempDir } from './helpers/temp.js';

const CLI = fileURLToPath(new URL('../bin/nitrogen.js', import.meta.url));

function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  assert.fail('no error was thrown');
}

const configError = (field: string) => (err: unknown) => isNitrogenError(err, 'NITROGEN_ERR_CONFIG') && err.message.includes(field);

describe('configuration', () => {
  it('defaults to the embedded server: SQLite, MQTT, REST and the portal, no sinks', () => {
    const config = parseConfig({});
    assert.equal(config.store.use, 'sqlite');
    assert.equal(config.registry.use, 'sqlite');
    assert.deepEqual(
      config.plugins.map((p) => p.use),
      ['mqtt', 'rest', 'portal'],
    );
    assert.deepEqual(config.sinks, []);
    assert.equal(config.limits.maxMessageBytes, 256 * 1024);
    assert.equal(config.limits.maxBatch, 1000);
  });

  it('names the bad field', () => {
    assert.throws(() => parseConfig({ store: { use: 5 } }), configError('store.use'));
    assert.throws(() => parseConfig({ limits: { maxBatch: -1 } }), configError('limits.maxBatch'));
    assert.throws(() => parseConfig({ sinks: [{ use: 'amqp', filter: { type: 'telemetry' } }] }), configError('sinks.0.filter.type'));
    assert.throws(() => parseConfig({ retention: { ttl: 'forever' } }), configError('retention.ttl'));
    assert.throws(() => parseConfig({ colour: 'red' }), configError('colour'));
    assert.throws(() => parseConfig({ limits: { defaultQueryLimit: 5000 } }), configError('limits.defaultQueryLimit'));
    assert.throws(() => parseConfig({ store: { use: 'none' } }), configError('store.use'));
    assert.throws(() => parseConfig({ ack: 'sink' }), configError('ack'));
  });

  it('reads nitrogen.config.json or NITROGEN_CONFIG, with environment overrides', () => {
    const dir = tempDir();
    try {
      writeFileSync(join(dir.path, 'nitrogen.config.json'), JSON.stringify({ store: { use: 'memory' }, plugins: [{ use: 'mqtt', options: { port: 1 } }, { use: 'rest' }] }));
      const config = loadConfig({ NITROGEN_MQTT_PORT: '1999', NITROGEN_REST_PORT: '0', NITROGEN_HOST: '0.0.0.0', NITROGEN_DATA_DIR: 'd', NITROGEN_ADMIN_SECRET: 'a-long-admin-secret' }, dir.path);
      assert.equal(config.store.use, 'memory');
      assert.deepEqual(
        config.plugins.map((p) => p.options.port),
        [1999, 0],
      );
      assert.equal(config.host, '0.0.0.0');
      assert.equal(config.dataDir, join(dir.path, 'd'));
      assert.equal(config.adminSecret, 'a-long-admin-secret');
      writeFileSync(join(dir.path, 'other.json'), '{"store": {"use": "sqlite"}, ');
      assert.throws(() => loadConfig({ NITROGEN_CONFIG: 'other.json' }, dir.path), configError('other.json:1:30: not valid JSON'));
      assert.throws(() => loadConfig({ NITROGEN_CONFIG: 'missing.json' }, dir.path), configError('NITROGEN_CONFIG'));
      assert.throws(() => loadConfig({ NITROGEN_MQTT_PORT: '70000' }, dir.path), configError('NITROGEN_MQTT_PORT'));
    } finally {
      dir.remove();
    }
  });
});

describe('configuration problems', () => {
  const problemsOf = (err: unknown): string[] => {
    assert.ok(isNitrogenError(err), String(err));
    return err.details!.problems as string[];
  };

  it('suggests the key meant by a misspelt one, and lists the known keys otherwise', () => {
    const problems = problemsOf(catchError(() => parseConfig({ sink: [], limits: { maxbatch: 5 }, log: { lvl: 'info' }, colour: 'red' })));
    assert.equal(problems.length, 4, problems.join('\n'));
    assert.ok(problems.includes('sink: unknown key; did you mean "sinks"?'), problems.join('\n'));
    assert.ok(problems.includes('limits.maxbatch: unknown key; did you mean "maxBatch"?'), problems.join('\n'));
    assert.ok(problems.includes('log.lvl: unknown key (known: level)'), problems.join('\n'));
    assert.ok(
      problems.some((p) => p.startsWith('colour: unknown key (known: host, dataDir,')),
      problems.join('\n'),
    );
  });

  it('says where a file is not JSON: line, column and the line itself', () => {
    const dir = tempDir();
    try {
      writeFileSync(join(dir.path, 'nitrogen.config.json'), '{\n  "store": { "use": "memory" },\n  "sinks": [] ,,\n}\n');
      const err = catchError(() => loadConfig({}, dir.path));
      assert.ok(isNitrogenError(err, 'NITROGEN_ERR_CONFIG'));
      assert.deepEqual(err.details, { line: 3, column: 16 });
      assert.match(err.message, /nitrogen\.config\.json:3:16: not valid JSON: .*\n {4}"sinks": \[\] ,,\n {17}\^$/);
      // A byte-order mark, as some editors write, is not a problem.
      writeFileSync(join(dir.path, 'nitrogen.config.json'), '\ufeff{"store": {"use": "memory"}}');
      assert.equal(loadConfig({}, dir.path).store.use, 'memory');
    } finally {
      dir.remove();
    }
  });

  it('replaces whole ${NAME} strings of the file with environment variables, and names one that is not set', () => {
    const dir = tempDir();
    try {
      const file = { store: { use: 'memory' }, cluster: { instanceId: '${NITROGEN_INSTANCE_ID}' }, identity: { use: 'default', options: { tokenSecret: '${TOKEN_SECRET}', note: 'a ${TOKEN_SECRET} inside' } } };
      writeFileSync(join(dir.path, 'nitrogen.config.json'), JSON.stringify(file));
      const config = loadConfig({ NITROGEN_INSTANCE_ID: 'front-7', TOKEN_SECRET: 'a-secret-of-the-deployment-32-chars!' }, dir.path);
      assert.equal(config.cluster.instanceId, 'front-7');
      assert.equal(config.identity.options.tokenSecret, 'a-secret-of-the-deployment-32-chars!');
      assert.equal(config.identity.options.note, 'a ${TOKEN_SECRET} inside');
      const problems = problemsOf(catchError(() => loadConfig({ NITROGEN_INSTANCE_ID: 'front-7', TOKEN_SECRET: '' }, dir.path)));
      assert.deepEqual(problems, ['identity.options.tokenSecret: refers to the environment variable TOKEN_SECRET, which is not set']);
    } finally {
      dir.remove();
    }
  });

  it('reports the problems of the environment with those of the file', () => {
    const dir = tempDir();
    try {
      writeFileSync(join(dir.path, 'nitrogen.config.json'), JSON.stringify({ limits: { maxBatch: 0 } }));
      const problems = problemsOf(catchError(() => loadConfig({ NITROGEN_MQTT_PORT: 'x', NITROGEN_REST_PORT: '70000' }, dir.path)));
      assert.deepEqual(
        problems.map((p) => p.split(':')[0]),
        ['NITROGEN_MQTT_PORT', 'NITROGEN_REST_PORT', 'limits.maxBatch'],
      );
    } finally {
      dir.remove();
    }
  });

  it('checks every plugin before the server writes anything, and reports all problems at once', async () => {
    const dir = tempDir();
    const dataDir = join(dir.path, 'data');
    try {
      const server = createServer(
        {
          dataDir,
          log: { level: 'silent' },
          sinks: [
            { use: 'amqp', name: 'twin', options: { url: 'amqp://127.0.0.1:1', address: 'q' } },
            { use: 'amqp', name: 'twin', options: { url: 'amqp://127.0.0.1:1', adress: 'q' } },
          ],
          plugins: [{ use: 'rest', options: { port: 0, maxBodyByte: 10 } }, { use: 'mqtt', options: { port: 'x' } }, { use: 'carrier-pigeon' }],
        },
        { catalog: defaultCatalog },
      );
      const err = await server.start().then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(isNitrogenError(err, 'NITROGEN_ERR_CONFIG'), String(err));
      assert.deepEqual(problemsOf(err), [
        'sinks.1.options.address: Invalid input: expected string, received undefined',
        'sinks.1.options.adress: unknown key; did you mean "address"?',
        "sinks.1.name: 'twin' is also the name of sinks.0; each sink needs its own (it names its checkpoint)",
        'plugins.0.options.maxBodyByte: unknown key; did you mean "maxBodyBytes"?',
        'plugins.1.options.port: must be a port number 0-65535, or false for none',
        "plugins.2: unknown transport 'carrier-pigeon' (built in: mqtt, rest, portal; or give a module path or an installed package)",
      ]);
      assert.equal(existsSync(dataDir), false, 'nothing was written: no data directory, no admin.secret, no token.key, no database');
    } finally {
      dir.remove();
    }
  });

  it('checks the plugins of a configuration whose other fields are wrong too (npm start)', async () => {
    const err = await checkConfig({ limits: { maxBatch: -1 }, store: { use: 'memory', options: { file: 'x' } }, plugins: [{ use: 'rest', options: { prot: 1 } }, { use: 5 }] }, defaultCatalog, 'nitrogen.config.json', [
      'NITROGEN_HOST: example',
    ]).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(isNitrogenError(err, 'NITROGEN_ERR_CONFIG'), String(err));
    assert.deepEqual(problemsOf(err), [
      'NITROGEN_HOST: example',
      'plugins.1.use: Invalid input: expected string, received number',
      'limits.maxBatch: Too small: expected number to be >0',
      'plugins.0.options.prot: unknown key; did you mean "port"?',
    ]);
    assert.match(err.message, /^invalid nitrogen\.config\.json: /);
    // Plugins that cannot be found, and nothing else: NITROGEN_ERR_PLUGIN.
    await assert.rejects(checkConfig({ plugins: [{ use: 'carrier-pigeon' }] }, defaultCatalog), (e: unknown) => isNitrogenError(e, 'NITROGEN_ERR_PLUGIN'));
    assert.equal((await checkConfig({ store: { use: 'memory' } }, defaultCatalog)).store.use, 'memory');
  });
});

describe('npm start (bin/nitrogen.js)', function () {
  this.timeout(20_000);

  async function run(env: Record<string, string>, cwd: string): Promise<{ code: number | null; out: string }> {
    const child = spawn(process.execPath, [CLI], { cwd, env: { ...process.env, NITROGEN_MQTT_PORT: '0', NITROGEN_REST_PORT: '0', NITROGEN_LOG_LEVEL: 'warn', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (out += d));
    const { code } = await exited(child);
    return { code, out };
  }

  it('prints every configuration problem, one a line, and exits with 1 without writing anything', async () => {
    const dir = tempDir();
    try {
      writeFileSync(join(dir.path, 'nitrogen.config.json'), JSON.stringify({ sink: [], plugins: [{ use: 'rest', options: { maxBodyByte: 1 } }] }));
      const { code, out } = await run({}, dir.path);
      assert.equal(code, 1, out);
      assert.equal(
        out,
        [
          `nitrogen failed to start: NITROGEN_ERR_CONFIG: 2 problems in ${join(dir.path, 'nitrogen.config.json')}:`,
          '  - sink: unknown key; did you mean "sinks"?',
          '  - plugins.0.options.maxBodyByte: unknown key; did you mean "maxBodyBytes"?',
          '',
        ].join('\n'),
      );
      assert.deepEqual(readdirSync(dir.path), ['nitrogen.config.json']);
    } finally {
      dir.remove();
    }
  });

  it('names the setting that chooses a port that is taken, without a stack trace', async () => {
    const dir = tempDir();
    const taken = createNetServer();
    try {
      const port = await new Promise<number>((resolve) => taken.listen(0, '127.0.0.1', () => resolve((taken.address() as AddressInfo).port)));
      const { code, out } = await run({ NITROGEN_MQTT_PORT: String(port) }, dir.path);
      assert.equal(code, 1, out);
      assert.match(
        out,
        new RegExp(
          `^nitrogen failed to start: NITROGEN_ERR_CONFIG: plugins\\.0 \\(mqtt\\): cannot listen on 127\\.0\\.0\\.1:${port}: the address is in use by another process; choose another port: plugins\\.0\\.options\\.port in the configuration, or NITROGEN_MQTT_PORT \\(0 picks a free one\\)\n$`,
        ),
      );
      assert.doesNotMatch(out, /\n\s+at /, 'no stack trace');
    } finally {
      taken.close();
      dir.remove();
    }
  });
});

describe('message envelope', () => {
  const ctx = { sender: 'car-1', now: Date.UTC(2026, 0, 1) };

  it('normalizes a valid envelope and sets from, id and ts', () => {
    const m = parseEnvelope({ type: 'telemetry', body: { a: 1 }, ts: '2026-01-01T01:00:00+01:00', tags: ['x'] }, ctx);
    assert.equal(m.from, 'car-1');
    assert.equal(m.ts, '2026-01-01T00:00:00.000Z');
    assert.match(m.id, /^[0-9a-f]{32}$/);
    assert.deepEqual(parseEnvelope({ type: 't' }, ctx).body, null);
  });

  it('makes time-ordered, unique ids', () => {
    const ids = Array.from({ length: 100_000 }, () => newMessageId(1_800_000_000_000));
    assert.equal(new Set(ids).size, ids.length);
    assert.deepEqual([...ids].sort(), ids);
    assert.ok(newMessageId(1_800_000_000_001) > ids[ids.length - 1]!);
  });

  it('refuses invalid input with a code and a field, whatever it is given (fuzz)', () => {
    let seed = 42;
    const random = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    const values = [null, true, 0, -1, 1e308, '', 'x', 'telemetry', '2026-01-01T00:00:00Z', [], [1], {}, { a: 1 }, 'é'.repeat(70), NaN];
    const fields = ['id', 'type', 'from', 'to', 'ts', 'body', 'tags', 'responseTo', 'expires', 'other', '__proto__'];
    for (let i = 0; i < 5000; i++) {
      const input: Record<string, unknown> = {};
      for (const f of fields) if (random() < 0.4) input[f] = values[Math.floor(random() * values.length)];
      try {
        const m = parseEnvelope(input, ctx);
        assert.equal(m.from, 'car-1');
        assert.equal(typeof m.type, 'string');
      } catch (err) {
        assert.ok(err instanceof NitrogenError, `unexpected ${String(err)}`);
        assert.ok(['NITROGEN_ERR_VALIDATION', 'NITROGEN_ERR_SENDER_MISMATCH'].includes(err.code));
      }
    }
  });

  it('checks the topic against the envelope', () => {
    assert.throws(
      () => parseEnvelope({ type: 'a' }, { ...ctx, type: 'b' }),
      (err) => isNitrogenError(err, 'NITROGEN_ERR_VALIDATION'),
    );
    assert.throws(
      () => parseEnvelope({ type: 'a', from: 'car-2' }, ctx),
      (err) => isNitrogenError(err, 'NITROGEN_ERR_SENDER_MISMATCH'),
    );
    assert.throws(
      () => parseEnvelope({ type: 'a', ts: '10000-01-01T00:00:00Z' }, ctx),
      (err) => isNitrogenError(err, 'NITROGEN_ERR_VALIDATION'),
    );
  });
});

describe('permission evaluation', () => {
  const p = (fields: Partial<Permission>): Permission => ({ id: Math.random().toString(36), issuedTo: 'app', principalFor: 'car', action: 'view', authorized: true, priority: 100, createdAt: '2026-01-01T00:00:00.000Z', ...fields });
  const app = { id: 'app' };

  it('lets a principal act on itself, the admin do anything, and denies by default', () => {
    assert.equal(evaluate([], { id: 'car' }, 'send', 'car'), true);
    assert.equal(evaluate([], { id: 'car' }, 'admin', 'car'), false);
    assert.equal(evaluate([], { id: 'admin' }, 'admin', null), true);
    assert.equal(evaluate([], app, 'view', 'car'), false);
  });

  it('takes the first match by priority; admin answers every action; expired records are skipped', () => {
    const records = [p({ priority: 1, authorized: false, action: null }), p({ priority: 2 })];
    assert.equal(evaluate(records, app, 'view', 'car'), false);
    assert.equal(evaluate([p({ action: 'admin' })], app, 'send', 'car'), true);
    assert.equal(evaluate([p({ expires: '2000-01-01T00:00:00Z' })], app, 'view', 'car'), false);
    assert.equal(evaluate([p({ principalFor: null })], app, 'view', 'anyone'), true);
    assert.equal(evaluate([p({ principalFor: 'car' })], app, 'view', null), false, 'a grant on one principal is not system-wide');
  });

  it('computes what an actor may read: explicit ids, or all under a wildcard', () => {
    assert.deepEqual(scope([p({}), p({ principalFor: 'car2', authorized: false })], app, 'view'), new Set(['app', 'car']));
    assert.equal(scope([p({ principalFor: null })], app, 'view'), 'all');
    assert.deepEqual(scope([p({ principalFor: null, authorized: false, priority: 1 }), p({ principalFor: 'car' })], app, 'view'), new Set(['app']));
  });

  it('indexes records per actor and rebuilds when one expires', () => {
    const soon = new Date(Date.now() + 50).toISOString();
    const index = new PermissionIndex([p({ expires: soon }), p({ issuedTo: null, principalFor: 'pub', action: 'subscribe' })]);
    assert.equal(index.authorize(app, 'view', 'car'), true);
    assert.equal(index.authorize({ id: 'other' }, 'subscribe', 'pub'), true);
    assert.equal(index.stale(Date.now() + 100), true);
  });
});

describe('group commit', () => {
  const message = (i: number): Message => ({ id: `m${i}`, type: 't', from: 'x', ts: new Date().toISOString(), body: null });

  it('gathers submissions made while a commit runs into the next commit', async () => {
    const batches: number[] = [];
    let release!: () => void;
    const commits = new GroupCommit(
      async (batch) => {
        batches.push(batch.length);
        if (batches.length === 1) await new Promise<void>((r) => (release = r));
      },
      { maxPending: 1000, maxCommitBatch: 100, concurrency: 1 },
    );
    const first = commits.submit([message(0)]);
    await new Promise((r) => setImmediate(r));
    const rest = Array.from({ length: 50 }, (_, i) => commits.submit([message(i + 1)]));
    await new Promise((r) => setImmediate(r));
    release();
    await Promise.all([first, ...rest]);
    assert.deepEqual(batches, [1, 50]);
  });

  it('refuses with NITROGEN_ERR_OVERLOADED past maxPending when asked to, and fails every submission of a failed commit', async () => {
    let fail = true;
    const commits = new GroupCommit(
      async () => {
        await new Promise((r) => setTimeout(r, 20));
        if (fail) throw new Error('disk full');
      },
      { maxPending: 3, maxCommitBatch: 100, concurrency: 1 },
    );
    const a = commits.submit([message(1), message(2)]);
    const b = commits.submit([message(3)]);
    await assert.rejects(commits.submit([message(4)], { reject: true }), (err) => isNitrogenError(err, 'NITROGEN_ERR_OVERLOADED') && err.retryAfter === 1);
    await assert.rejects(a, (err) => isNitrogenError(err, 'NITROGEN_ERR_STORE') && (err.cause as Error).message === 'disk full');
    await assert.rejects(b, (err) => isNitrogenError(err, 'NITROGEN_ERR_STORE'));
    fail = false;
    await commits.submit([message(5)], { reject: true });
    await commits.close();
    await assert.rejects(commits.submit([message(6)]), (err) => isNitrogenError(err, 'NITROGEN_ERR_UNAVAILABLE'));
  });
});
