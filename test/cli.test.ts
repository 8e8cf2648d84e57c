import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { COMMANDS } from '../cli/commands/index.js';
import { EXIT_CODES } from '../cli/exit-codes.js';
import { exited } from './helpers/process.js';
import { ADMIN_SECRET, startServer, type TestServer } from './helpers/server.js';
import { tempDir } from './helpers/temp.js';
import { RheaBroker } from './sinks-amqp/rhea-broker.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'dist/bin/nitrogen.js');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The environment of a CLI run: its own credentials directory, no server named by the caller's environment. */
function cliEnv(configDir: string, extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NITROGEN_CONFIG_DIR: configDir };
  delete env.NITROGEN_URL;
  Object.assign(env, extra);
  for (const [k, v] of Object.entries(extra)) if (v === undefined) delete env[k];
  return env;
}

/** Starts the real `nitrogen` binary. */
function start(args: string[], env: NodeJS.ProcessEnv): { child: ChildProcess; output: () => Run; done: Promise<Run> } {
  const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const output = () => ({ code: child.exitCode, stdout, stderr });
  return { child, output, done: exited(child).then(() => output()) };
}

/** Runs `nitrogen …args` to its end, with `input` on stdin. */
async function cli(args: string[], env: NodeJS.ProcessEnv, input?: string): Promise<Run> {
  const run = start(args, env);
  run.child.stdin!.end(input ?? '');
  return run.done;
}

async function until(what: string, check: () => boolean, ms = 20_000): Promise<void> {
  for (const end = Date.now() + ms; !check();) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A port nothing listens on: taken from the system, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const ok = (run: Run, code = 0) => assert.equal(run.code, code, `exit ${run.code}, expected ${code}\nstdout: ${run.stdout}\nstderr: ${run.stderr}`);
const json = (run: Run) => (ok(run), JSON.parse(run.stdout));

describe('the nitrogen CLI against a real server', function () {
  this.timeout(120_000);
  let t: TestServer;
  let peer: RheaBroker;
  let dirs: ReturnType<typeof tempDir>;
  let env: NodeJS.ProcessEnv;
  let url: string;

  before(async () => {
    peer = await RheaBroker.start();
    t = await startServer({ sinks: [{ use: 'amqp', name: 'warehouse', delivery: { lingerMs: 5, pollMs: 50, retryMinMs: 20, retryMaxMs: 200 }, options: { url: peer.url, address: 'telemetry' } }] });
    dirs = tempDir('nitrogen-cli-');
    writeFileSync(join(dirs.path, 'admin.secret'), ADMIN_SECRET + '\n');
    env = cliEnv(join(dirs.path, 'admin'));
    url = t.origin;
    ok(await cli(['login', url, '--id', 'admin', '--secret-file', join(dirs.path, 'admin.secret')], env));
  });

  after(async () => {
    await t?.stop();
    await peer?.stop();
    dirs?.remove();
  });

  describe('login', () => {
    it('keeps the token, not the secret, in a 0600 file in a 0700 directory', async () => {
      const dir = join(dirs.path, 'fresh');
      const run = await cli(['login', url, '--id', 'admin', '--secret-stdin', '--json'], cliEnv(dir), ADMIN_SECRET + '\n');
      const answer = json(run);
      assert.deepEqual(Object.keys(answer).sort(), ['expiresAt', 'id', 'url']);
      assert.equal(answer.url, `${url}/api/v1`);
      assert.ok(Date.parse(answer.expiresAt) > Date.now());
      assert.equal(statSync(dir).mode & 0o777, 0o700);
      const file = join(dir, 'credentials.json');
      assert.equal(statSync(file).mode & 0o777, 0o600);
      const text = readFileSync(file, 'utf8');
      assert.ok(!text.includes(ADMIN_SECRET), 'the secret is not stored');
      const stored = JSON.parse(text);
      assert.equal(stored.current, answer.url);
      assert.equal(stored.servers[answer.url].id, 'admin');
      // The stored token is the server's: it works on the API.
      assert.equal((await t.api('GET', '/principals/admin', { token: stored.servers[answer.url].accessToken })).status, 200);
    });

    it('lives under $XDG_CONFIG_HOME/nitrogen without NITROGEN_CONFIG_DIR', async () => {
      const xdg = join(dirs.path, 'xdg');
      const run = await cli(['login', `${url}/api/v1/`, '--id', 'admin', '--secret-stdin'], cliEnv('', { NITROGEN_CONFIG_DIR: undefined, XDG_CONFIG_HOME: xdg }), ADMIN_SECRET);
      ok(run);
      assert.match(run.stdout, /logged in to .* as admin until/);
      assert.equal(statSync(join(xdg, 'nitrogen', 'credentials.json')).mode & 0o777, 0o600);
    });

    it('refuses wrong credentials with exit 3 and the server code; asks for a secret source without a terminal (exit 2)', async () => {
      const dir = join(dirs.path, 'wrong');
      const wrong = await cli(['login', url, '--id', 'admin', '--secret-stdin'], cliEnv(dir), 'not-the-secret');
      ok(wrong, 3);
      assert.match(wrong.stderr, /^nitrogen: NITROGEN_ERR_BAD_CREDENTIALS: /);
      const noTerminal = await cli(['login', url, '--id', 'admin'], cliEnv(dir));
      ok(noTerminal, 2);
      assert.match(noTerminal.stderr, /--secret-file FILE or --secret-stdin/);
      assert.equal((await cli(['login', 'ftp://x', '--id', 'a', '--secret-stdin'], cliEnv(dir), 's')).code, 2);
    });

    it('says to log in when there is no login, or when the stored token expired (exit 3)', async () => {
      const dir = join(dirs.path, 'expired');
      const none = await cli(['principals', 'list'], cliEnv(dir));
      ok(none, 3);
      assert.match(none.stderr, /not logged in: nitrogen login URL/);
      ok(await cli(['login', url, '--id', 'admin', '--secret-stdin'], cliEnv(dir), ADMIN_SECRET));
      const file = join(dir, 'credentials.json');
      const stored = JSON.parse(readFileSync(file, 'utf8'));
      stored.servers[stored.current].expiresAt = new Date(Date.now() - 1000).toISOString();
      writeFileSync(file, JSON.stringify(stored));
      const expired = await cli(['principals', 'list'], cliEnv(dir));
      ok(expired, 3);
      assert.match(expired.stderr, /the login to .* as "admin" expired at .*: log in again with nitrogen login/);
    });

    it('tells a token the server revoked (the secret was rotated) from other failures: exit 3 and log in again', async () => {
      const [ops] = await t.register([{ type: 'app', id: 'ops' }]);
      const dir = join(dirs.path, 'ops');
      ok(await cli(['login', url, '--id', 'ops', '--secret-stdin'], cliEnv(dir), ops!.secret));
      ok(await cli(['whoami'], cliEnv(dir)));
      ok(await cli(['principals', 'rotate-secret', 'ops'], env));
      const revoked = await cli(['whoami'], cliEnv(dir));
      ok(revoked, 3);
      assert.match(revoked.stderr, /NITROGEN_ERR_TOKEN_INVALID: .*; log in again: nitrogen login http/);
      // A credentials file others could read is narrowed back, and the user told.
      const file = join(dir, 'credentials.json');
      chmodSync(file, 0o644);
      const loose = await cli(['whoami'], cliEnv(dir));
      assert.match(loose.stderr, /credentials\.json was readable by others \(mode 644\); it is 0600 now/);
      assert.equal(statSync(file).mode & 0o777, 0o600);
      ok(await cli(['logout'], cliEnv(dir)));
      ok(await cli(['whoami'], cliEnv(dir)), 3);
    });
  });

  it('asks the id and, without echo, the secret on a terminal', async function () {
    // A real pseudo-terminal: util-linux `script` runs the CLI on one and relays this test's input.
    const dir = join(dirs.path, 'tty');
    const command = [process.execPath, BIN, 'login', url].map((a) => `'${a}'`).join(' ');
    const run = spawn('script', ['-qefc', command, '/dev/null'], { env: cliEnv(dir), stdio: ['pipe', 'pipe', 'pipe'] });
    let seen = '';
    run.stdout.on('data', (d: Buffer) => (seen += d.toString()));
    await until('the id prompt', () => seen.includes('principal id: '));
    run.stdin.write('admin\r');
    await until('the secret prompt', () => seen.includes('secret or password: '));
    const before = seen.length;
    run.stdin.write(`${ADMIN_SECRET}x\x7f\r`); // a slip, erased with Backspace
    await exited(run);
    assert.equal(run.exitCode, 0, seen);
    assert.match(seen, /logged in to .* as admin/);
    assert.ok(!seen.slice(before).includes(ADMIN_SECRET.slice(0, 8)), `the secret was echoed:\n${seen}`);
    assert.equal(JSON.parse(readFileSync(join(dir, 'credentials.json'), 'utf8')).servers[`${url}/api/v1`].id, 'admin');
  });

  it("runs the README's CLI block as written", async () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const block = /```sh\n([\s\S]*?)```/.exec(readme.slice(readme.indexOf("\n## The CLI's first five commands\n")))?.[1];
    assert.ok(block?.includes('http://127.0.0.1:3000'), 'README.md: no sh block naming the server under "## The CLI\'s first five commands"');
    // Beside the server as the README says: its data/admin.secret, and `nitrogen` on the PATH (what npm link does).
    const work = join(dirs.path, 'readme');
    mkdirSync(join(work, 'data'), { recursive: true });
    mkdirSync(join(work, 'bin'));
    writeFileSync(join(work, 'data', 'admin.secret'), ADMIN_SECRET + '\n');
    writeFileSync(join(work, 'bin', 'nitrogen'), `#!/bin/sh\nexec '${process.execPath}' '${BIN}' "$@"\n`);
    chmodSync(join(work, 'bin', 'nitrogen'), 0o755);
    const car1 = await t.api('POST', '/principals', { body: { type: 'device', id: 'car-1' } });
    assert.equal(car1.status, 201);
    const car1Token = await t.token('car-1', car1.body.principals[0].secret);
    await t.api('POST', '/messages', { token: car1Token, body: { type: 'telemetry', body: { speed: 88 } } });

    const shell = spawn('bash', ['-euo', 'pipefail', '-c', block!.replaceAll('http://127.0.0.1:3000', url)], {
      cwd: work,
      env: cliEnv(join(work, 'config'), { PATH: `${join(work, 'bin')}:${process.env.PATH}` }),
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let out = '';
    let err = '';
    shell.stdout.on('data', (d: Buffer) => (out += d.toString()));
    shell.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const text = () => `${out}\n[stderr]\n${err}\n[exit ${shell.exitCode}]`;
    try {
      await until('the tail following', () => err.includes('following') || shell.exitCode !== null);
      assert.equal(shell.exitCode, null, text());
      assert.match(out, /^logged in to .* as admin/m, text());
      assert.match(out, /^secret: +\S{43}$/m, text());
      assert.match(out, /^car-2 +device +- +eu +yes/m, text());
      assert.match(out, /^\S+Z +car-1 +- +telemetry +- +\S+ +\{"speed":88\}$/m, text());
      const car2 = await t.api('POST', '/principals/car-2/impersonate');
      await t.api('POST', '/messages', { token: car2.body.accessToken, body: { type: 'telemetry', body: { speed: 91 } } });
      await until('the live message', () => /car-2 {2}telemetry {2}\{"speed":91\}/.test(out));
    } finally {
      if (shell.exitCode === null) process.kill(-shell.pid!, 'SIGTERM');
    }
  });

  describe('principals', () => {
    it('adds, shows, lists with paging, disables, enables, rotates and deletes', async () => {
      const added = json(await cli(['principals', 'add', 'device', 'cli-car-1', '--name', 'Car 1', '--tag', 'eu,cli', '--json'], env));
      assert.deepEqual(Object.keys(added).sort(), ['principal', 'secret']);
      assert.deepEqual([added.principal.id, added.principal.type, added.principal.name, added.principal.tags], ['cli-car-1', 'device', 'Car 1', ['eu', 'cli']]);
      assert.ok(await t.token('cli-car-1', added.secret), 'the printed secret is the device credential');

      const human = await cli(['principals', 'add', 'device', 'cli-car-2', '--tag', 'cli'], env);
      ok(human);
      assert.match(human.stdout, /^id: +cli-car-2$/m);
      assert.match(human.stdout, /^secret: +\S{43}$/m);
      ok(await cli(['principals', 'add', 'device', 'cli-car-3', '--tag', 'cli'], env));

      const conflict = await cli(['principals', 'add', 'device', 'cli-car-1'], env);
      ok(conflict, 1);
      assert.equal(conflict.stderr, 'nitrogen: NITROGEN_ERR_CONFLICT: principal id taken: cli-car-1\n');

      const page = json(await cli(['principals', 'list', '--tag', 'cli', '--limit', '2', '--json'], env));
      assert.deepEqual(
        page.principals.map((p: { id: string }) => p.id),
        ['cli-car-1', 'cli-car-2'],
      );
      assert.equal(typeof page.next, 'string');
      const rest = json(await cli(['principals', 'list', '--tag', 'cli', '--limit', '2', '--cursor', page.next, '--json'], env));
      assert.deepEqual([rest.principals.map((p: { id: string }) => p.id), rest.next], [['cli-car-3'], null]);
      const all = json(await cli(['principals', 'list', '--tag', 'cli', '--limit', '1', '--all', '--json'], env));
      assert.deepEqual(
        all.principals.map((p: { id: string }) => p.id),
        ['cli-car-1', 'cli-car-2', 'cli-car-3'],
      );
      const table = await cli(['principals', 'list', '--tag', 'cli', '--limit', '2'], env);
      ok(table);
      assert.match(table.stdout, /^ID +TYPE +NAME +TAGS +ENABLED +LAST SEEN\ncli-car-1 +device +Car 1 +eu,cli +yes/);
      assert.match(table.stderr, /more: add --cursor \S+ \(or --all\)/);

      assert.equal(json(await cli(['principals', 'show', 'cli-car-2', '--json'], env)).principal.id, 'cli-car-2');
      const missing = await cli(['principals', 'show', 'no-such'], env);
      ok(missing, 4);
      assert.match(missing.stderr, /^nitrogen: NITROGEN_ERR_NOT_FOUND: /);

      ok(await cli(['principals', 'disable', 'cli-car-1'], env));
      const disabled = await cli(['login', url, '--id', 'cli-car-1', '--secret-stdin'], cliEnv(join(dirs.path, 'car')), added.secret);
      ok(disabled, 3);
      assert.match(disabled.stderr, /NITROGEN_ERR_PRINCIPAL_DISABLED/);
      assert.equal(json(await cli(['principals', 'enable', 'cli-car-1', '--json'], env)).principal.enabled, true);
      ok(await cli(['login', url, '--id', 'cli-car-1', '--secret-stdin'], cliEnv(join(dirs.path, 'car')), added.secret));

      const rotated = json(await cli(['principals', 'rotate-secret', 'cli-car-1', '--json'], env));
      assert.notEqual(rotated.secret, added.secret);
      assert.equal((await t.api('POST', '/principals/auth', { token: null, body: { id: 'cli-car-1', secret: added.secret } })).status, 401);
      assert.ok(await t.token('cli-car-1', rotated.secret));

      assert.deepEqual(json(await cli(['principals', 'delete', 'cli-car-3', '--json'], env)), { deleted: 'cli-car-3' });
      ok(await cli(['principals', 'show', 'cli-car-3'], env), 4);
    });

    it("sets a user's password from stdin, which then logs in", async () => {
      await t.register([{ type: 'user', id: 'pw-user' }]);
      const short = await cli(['principals', 'set-password', 'pw-user', '--password-stdin'], env, 'short\n');
      ok(short, 1);
      assert.match(short.stderr, /^nitrogen: NITROGEN_ERR_VALIDATION: .*\(field: password\)\n$/);
      assert.deepEqual(json(await cli(['principals', 'set-password', 'pw-user', '--password-stdin', '--json'], env, 'correct horse battery\n')), { id: 'pw-user', passwordSet: true });
      ok(await cli(['login', url, '--id', 'pw-user', '--secret-stdin'], cliEnv(join(dirs.path, 'pw-user')), 'correct horse battery'));
      ok(await cli(['principals', 'set-password', 'pw-user'], env), 2);
    });

    it('imports a CSV file with a verdict per row, registering every good row', async () => {
      await t.register([{ type: 'device', id: 'csv-taken' }]);
      const csv = join(dirs.path, 'fleet.csv');
      writeFileSync(csv, 'type,id,name,tags\r\ndevice,csv-1,"Truck, blue",eu;csv\n\ndevice,csv-taken,,\nrobot,csv-2,,\napp,csv-3,Dashboard,csv\ndevice,bad id!,,\n');
      const run = await cli(['principals', 'import', csv, '--json'], env);
      ok(run, 1);
      const report = JSON.parse(run.stdout);
      assert.equal(report.registered, 2);
      assert.equal(report.failed, 3);
      assert.deepEqual(
        report.rows.map((r: { row: number; id: string; ok: boolean; error?: { code: string } }) => [r.row, r.id, r.ok, r.error?.code]),
        [
          [2, 'csv-1', true, undefined],
          [4, 'csv-taken', false, 'NITROGEN_ERR_CONFLICT'],
          [5, 'csv-2', false, 'NITROGEN_ERR_VALIDATION'],
          [6, 'csv-3', true, undefined],
          [7, 'bad id!', false, 'NITROGEN_ERR_VALIDATION'],
        ],
      );
      const truck = (await t.api('GET', '/principals/csv-1')).body.principal;
      assert.deepEqual([truck.name, truck.tags], ['Truck, blue', ['eu', 'csv']]);
      assert.ok(await t.token('csv-3', report.rows[3].secret));
      const human = await cli(['principals', 'import', '-'], env, 'type,id\ndevice,csv-4\n');
      ok(human);
      assert.match(human.stdout, /^2 +csv-4 +registered +\S{43}$/m);
      assert.match(human.stdout, /1 registered, 0 failed/);
      // Refused for the caller itself, nothing registered: the server's error is the command's.
      const [app] = await t.register([{ type: 'app', id: 'csv-app' }]);
      const appEnv = cliEnv(join(dirs.path, 'csv-app'));
      ok(await cli(['login', url, '--id', 'csv-app', '--secret-stdin'], appEnv, app!.secret));
      const forbidden = await cli(['principals', 'import', '-'], appEnv, 'type\ndevice\n');
      ok(forbidden, 1);
      assert.match(forbidden.stderr, /^nitrogen: NITROGEN_ERR_FORBIDDEN: /);
    });
  });

  it('permissions: grant, list, revoke', async () => {
    await t.register([
      { type: 'app', id: 'perm-app' },
      { type: 'device', id: 'perm-car' },
    ]);
    const granted = json(await cli(['permissions', 'grant', 'subscribe', '--to', 'perm-app', '--on', 'perm-car', '--priority', '50', '--json'], env));
    assert.deepEqual([granted.permission.issuedTo, granted.permission.principalFor, granted.permission.action, granted.permission.authorized, granted.permission.priority], ['perm-app', 'perm-car', 'subscribe', true, 50]);
    const deny = json(await cli(['permissions', 'grant', 'any', '--to', 'perm-car', '--on', 'any', '--deny', '--json'], env)).permission;
    assert.deepEqual([deny.action, deny.principalFor, deny.authorized], [null, null, false]);
    const listed = json(await cli(['permissions', 'list', '--json'], env)).permissions.map((p: { id: string }) => p.id);
    assert.ok(listed.includes(granted.permission.id) && listed.includes(deny.id));
    const table = await cli(['permissions', 'list'], env);
    assert.match(table.stdout, new RegExp(`^${granted.permission.id} +perm-app +perm-car +subscribe +allow +50`, 'm'));
    ok(await cli(['permissions', 'revoke', granted.permission.id], env));
    assert.ok(!json(await cli(['permissions', 'list', '--json'], env)).permissions.some((p: { id: string }) => p.id === granted.permission.id));
    ok(await cli(['permissions', 'revoke', granted.permission.id], env), 4);
    const unsaid = await cli(['permissions', 'grant', 'view', '--to', 'perm-app'], env);
    ok(unsaid, 2);
    assert.match(unsaid.stderr, /needs --to ID\|any and --on ID\|any/);
  });

  it('api-keys and claim: a key registers a device, a user claims it by its code', async () => {
    const created = json(await cli(['api-keys', 'create', '--name', 'line 3', '--device-tag', 'line-3', '--json'], env));
    assert.match(created.key, /^n2k_/);
    assert.equal(created.apiKey.name, 'line 3');
    assert.ok(json(await cli(['api-keys', 'list', '--json'], env)).apiKeys.some((k: { id: string }) => k.id === created.apiKey.id));
    const res = await fetch(`${t.restUrl}/devices/register`, { method: 'POST', headers: { authorization: `ApiKey ${created.key}`, 'content-type': 'application/json' }, body: JSON.stringify({ id: 'thermo-1' }) });
    assert.equal(res.status, 201);
    const { claimCode } = (await res.json()) as { claimCode: { code: string } };

    const [alice] = await t.register([{ type: 'user', id: 'cli-alice' }]);
    const aliceEnv = cliEnv(join(dirs.path, 'alice'));
    ok(await cli(['login', url, '--id', 'cli-alice', '--secret-stdin'], aliceEnv, alice!.secret));
    ok(await cli(['principals', 'show', 'thermo-1'], aliceEnv), 1);
    const claimed = await cli(['claim', claimCode.code.toLowerCase()], aliceEnv);
    ok(claimed);
    assert.match(claimed.stdout, /claimed:\nid: +thermo-1/);
    ok(await cli(['principals', 'show', 'thermo-1'], aliceEnv));
    const again = await cli(['claim', claimCode.code], aliceEnv);
    ok(again, 1);
    assert.match(again.stderr, /NITROGEN_ERR_CLAIM_CODE_INVALID/);

    assert.deepEqual(json(await cli(['api-keys', 'revoke', created.apiKey.id, '--json'], env)), { revoked: created.apiKey.id });
    const refused = await fetch(`${t.restUrl}/devices/register`, { method: 'POST', headers: { authorization: `ApiKey ${created.key}`, 'content-type': 'application/json' }, body: '{}' });
    assert.equal(refused.status, 401);
  });

  it('tokens: issue from a secret, impersonate', async () => {
    const [dev] = await t.register([{ type: 'device', id: 'tok-car' }]);
    const issued = json(await cli(['tokens', 'issue', '--id', 'tok-car', '--secret-stdin', '--json'], env, dev!.secret));
    assert.deepEqual(Object.keys(issued).sort(), ['accessToken', 'expiresAt', 'id']);
    assert.equal((await t.api('GET', '/principals/tok-car', { token: issued.accessToken })).status, 200);
    const plain = await cli(['tokens', 'impersonate', 'tok-car'], env);
    ok(plain);
    const token = plain.stdout.trim();
    const sent = await t.api('POST', '/messages', { token, body: { type: 'ping' } });
    assert.equal(sent.status, 201);
    assert.equal(sent.body.messages[0].from, 'tok-car');
  });

  describe('messages', () => {
    it('sends, lists with filters and paging, shows', async () => {
      const sent = json(await cli(['messages', 'send', '--type', 'cli-telemetry', '--body', '{"speed":88}', '--tag', 'eu', '--id', 'cli-m-1', '--json'], env));
      assert.deepEqual([sent.message.id, sent.message.from, sent.message.type, sent.message.body, sent.message.tags], ['cli-m-1', 'admin', 'cli-telemetry', { speed: 88 }, ['eu']]);
      const human = await cli(['messages', 'send', '--type', 'cli-telemetry', '--body', '91'], env);
      ok(human);
      assert.match(human.stdout, /^stored [0-9a-f]{32}\n$/);
      ok(await cli(['messages', 'send', '--type', 'cli-other', '--body', '"x"', '--tag', 'eu'], env));

      const tagged = json(await cli(['messages', 'list', '--from', 'admin', '--type', 'cli-telemetry', '--tag', 'eu', '--json'], env));
      assert.deepEqual(
        tagged.messages.map((m: { id: string }) => m.id),
        ['cli-m-1'],
      );
      const byType = json(await cli(['messages', 'list', '--type', 'cli-telemetry,cli-other', '--order', 'desc', '--limit', '2', '--json'], env));
      assert.deepEqual(
        byType.messages.map((m: { body: unknown }) => m.body),
        ['x', 91],
      );
      assert.equal(typeof byType.next, 'string');
      const last = json(await cli(['messages', 'list', '--type', 'cli-telemetry,cli-other', '--order', 'desc', '--limit', '2', '--cursor', byType.next, '--json'], env));
      assert.deepEqual(
        last.messages.map((m: { body: unknown }) => m.body),
        [{ speed: 88 }],
      );
      const table = await cli(['messages', 'list', '--type', 'cli-telemetry', '--tag', 'eu'], env);
      assert.match(table.stdout, /^TS +FROM +TO +TYPE +TAGS +ID +BODY\n\S+Z +admin +- +cli-telemetry +eu +cli-m-1 +\{"speed":88\}\n$/);

      assert.equal(json(await cli(['messages', 'show', 'cli-m-1', '--json'], env)).message.body.speed, 88);
      ok(await cli(['messages', 'show', 'no-such-id'], env), 4);

      const invalid = await cli(['messages', 'send', '--type', 'bad type!'], env);
      ok(invalid, 1);
      assert.match(invalid.stderr, /^nitrogen: NITROGEN_ERR_VALIDATION: .*\(field: type\)\n$/);
      ok(await cli(['messages', 'send', '--type', 'x', '--body', '{speed'], env), 2);
      const fromStdin = json(await cli(['messages', 'send', '--type', 'cli-file', '--body-file', '-', '--json'], env, '{"lines":["a","b"]}\n'));
      assert.deepEqual(fromStdin.message.body, { lines: ['a', 'b'] });
      ok(await cli(['messages', 'list', '--since', 'yesterday'], env), 1);
    });

    it('tails live with filters, as lines or NDJSON', async () => {
      const tail = start(['messages', 'tail', '--type', 'cli-live', '--tag', 'on', '--count', '2', '--json'], env);
      await until('the stream to open', () => tail.output().stderr.includes('following') || tail.child.exitCode !== null);
      for (const [type, tags, body] of [
        ['cli-live', ['on'], 1],
        ['cli-live', ['off'], 2],
        ['cli-other', ['on'], 3],
        ['cli-live', ['on', 'x'], 4],
      ] as const) {
        assert.equal((await t.api('POST', '/messages', { body: { type, tags, body } })).status, 201);
      }
      const run = await tail.done;
      ok(run);
      assert.deepEqual(
        run.stdout
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l).body),
        [1, 4],
      );

      const human = start(['messages', 'tail', '--from', 'admin', '--type', 'cli-live2', '--count', '1'], env);
      await until('the stream to open', () => human.output().stderr.includes('following') || human.child.exitCode !== null);
      await t.api('POST', '/messages', { body: { type: 'cli-live2', to: 'admin', body: { v: 1 } } });
      const line = await human.done;
      ok(line);
      assert.match(line.stdout, /^\S+Z {2}admin → admin {2}cli-live2 {2}\{"v":1\}\n$/);

      // Ctrl-C ends a tail as done.
      const open = start(['messages', 'tail'], env);
      await until('the stream to open', () => open.output().stderr.includes('following') || open.child.exitCode !== null);
      open.child.kill('SIGINT');
      ok(await open.done);
    });
  });

  it('sinks: status and a replay of a time range to a real AMQP peer', async () => {
    const since = new Date().toISOString();
    await t.api('POST', '/messages', {
      body: [
        { type: 'sink-a', body: 1 },
        { type: 'sink-a', body: 2 },
      ],
    });
    const delivered = () => (peer.received.get('telemetry') ?? []).filter((m) => JSON.stringify(m).includes('sink-a')).length;
    await until('live delivery', () => delivered() === 2);
    const status = json(await cli(['sinks', 'status', '--json'], env));
    assert.deepEqual(
      status.sinks.map((s: { name: string }) => s.name),
      ['warehouse'],
    );
    assert.ok(status.sinks[0].delivered >= 2);
    const human = await cli(['sinks', 'status', 'warehouse'], env);
    assert.match(human.stdout, /^NAME +DELIVERED +DEAD-LETTERED +LAG +STATE +REPLAYS +LAST ERROR\nwarehouse +\d+ +0 /);

    const replay = json(await cli(['sinks', 'replay', 'warehouse', since, new Date(Date.now() + 60_000).toISOString(), '--json'], env));
    assert.equal(replay.replay.since, since);
    await until('the replay', () => delivered() === 4);
    const after = json(await cli(['sinks', 'status', 'warehouse', '--json'], env));
    assert.equal(after.sink.replays.find((r: { id: number }) => r.id === replay.replay.id).state, 'done');
    ok(await cli(['sinks', 'replay', 'nope'], env), 4);
    ok(await cli(['sinks', 'dead-letters', 'warehouse'], env));
  });

  it('health: liveness and readiness; exit 5 when the server is down', async () => {
    const health = json(await cli(['health', '--json'], env));
    assert.deepEqual(Object.keys(health).sort(), ['health', 'ready']);
    assert.equal(health.ready.ready, true);
    assert.equal(health.health.status, 'ok');
    const human = await cli(['health'], env);
    ok(human);
    assert.match(human.stdout, /^ready: +yes$/m);

    const port = await closedPort();
    const down = await cli(['health', '--url', `http://127.0.0.1:${port}`], env);
    ok(down, 5);
    assert.match(down.stderr, /^nitrogen: NITROGEN_CLIENT_UNREACHABLE: GET http:\/\/127\.0\.0\.1:\d+\/health: ECONNREFUSED\n$/);
  });

  it('a tail ends with exit 3 when its token expires, and the next command says to log in again', async () => {
    const shortLived = await startServer({ identity: { use: 'default', options: { tokenTtl: '6s' } } });
    try {
      const dir = join(dirs.path, 'short');
      ok(await cli(['login', shortLived.origin, '--id', 'admin', '--secret-stdin'], cliEnv(dir), ADMIN_SECRET));
      const tail = await cli(['messages', 'tail'], cliEnv(dir));
      ok(tail, 3);
      assert.match(tail.stderr, /following; Ctrl-C ends\nnitrogen: the login expired at \S+: log in again with nitrogen login http/);
      const next = await cli(['principals', 'list'], cliEnv(dir));
      ok(next, 3);
      assert.match(next.stderr, /expired at .*: log in again/);
    } finally {
      await shortLived.stop();
    }
  });

  it('a logged-in command against a server that went away: exit 5, one line', async () => {
    const other = await startServer();
    const dir = join(dirs.path, 'gone');
    ok(await cli(['login', other.origin, '--id', 'admin', '--secret-stdin'], cliEnv(dir), ADMIN_SECRET));
    ok(await cli(['principals', 'list'], cliEnv(dir)));
    await other.stop();
    for (const args of [
      ['principals', 'list'],
      ['messages', 'tail'],
    ]) {
      const run = await cli(args, cliEnv(dir));
      ok(run, 5);
      assert.match(run.stderr, /^nitrogen: NITROGEN_CLIENT_UNREACHABLE: .*\n$/);
    }
    // NITROGEN_URL and --url pick the server; the login is per server.
    const elsewhere = await cli(['principals', 'list'], cliEnv(dir, { NITROGEN_URL: url }));
    ok(elsewhere, 3);
    assert.match(elsewhere.stderr, /not logged in to http:\/\/127\.0\.0\.1:\d+\/api\/v1/);
    ok(await cli(['principals', 'list', '--url', url], env));
  });
});

describe('the nitrogen CLI without a server', function () {
  this.timeout(60_000);
  let dir: ReturnType<typeof tempDir>;
  let env: NodeJS.ProcessEnv;
  before(() => {
    dir = tempDir('nitrogen-cli-');
    env = cliEnv(join(dir.path, 'config'));
  });
  after(() => dir.remove());

  it('has --help on every command and group, and bad command lines exit 2 with the usage', async () => {
    // Four at a time: each is a process start.
    for (let i = 0; i < COMMANDS.length; i += 4) {
      await Promise.all(
        COMMANDS.slice(i, i + 4).map(async (command) => {
          const run = await cli([...command.name.split(' '), '--help'], env);
          ok(run);
          assert.ok(run.stdout.startsWith(`usage: nitrogen ${command.name}`), run.stdout);
        }),
      );
    }
    const top = await cli(['--help'], env);
    ok(top);
    for (const command of COMMANDS) assert.ok(top.stdout.includes(`  ${command.name} `), command.name);
    for (const e of Object.values(EXIT_CODES)) assert.ok(top.stdout.includes(`  ${e.code}  ${e.meaning}`));
    ok(await cli(['help'], env));
    assert.match((await cli(['sinks', '-h'], env)).stdout, /sinks replay/);

    for (const [args, said] of [
      [['frobnicate'], /unknown command "frobnicate"/],
      [['principals'], /"principals" needs a subcommand/],
      [['principals', 'frob'], /unknown command "principals frob"/],
      [['principals', 'add'], /missing TYPE\nusage: nitrogen principals add TYPE \[ID\] \[options\]/],
      [['principals', 'add', 'robot'], /TYPE must be one of device, app, user/],
      [['principals', 'show', 'a', 'b'], /unexpected argument "b"/],
      [['principals', 'list', '--limit', '0'], /--limit: must be a positive integer/],
      [['principals', 'list', '--bogus'], /Unknown option '--bogus'/],
      [['messages', 'send'], /needs --type TYPE/],
      [['login', 'not a url'], /is not a URL/],
    ] as const) {
      const run = await cli([...args], env);
      ok(run, 2);
      assert.match(run.stderr, said);
      assert.ok(run.stderr.startsWith('nitrogen: '), run.stderr);
    }
  });

  it('config check: valid, or every problem with its line, column and a did-you-mean', async () => {
    const good = join(dir.path, 'good.json');
    writeFileSync(good, JSON.stringify({ dataDir: './data', store: { use: 'sqlite' } }));
    const valid = await cli(['config', 'check', good], env);
    ok(valid);
    assert.equal(valid.stdout, `${good}: valid\n`);

    const bad = join(dir.path, 'bad.json');
    writeFileSync(bad, '{\n  "dataDir": "./data",\n  "stroe": { "use": "sqlite" },\n  "limits": { "maxBatch": -1 },\n  "sinks": [\n    { "use": "amqp", "options": { "url": 5, "address": "q" } }\n  ]\n}\n');
    const run = await cli(['config', 'check', bad], env);
    ok(run, 6);
    assert.match(run.stdout, new RegExp(`^${bad}:3:3: stroe: unknown key; did you mean "store"\\?$`, 'm'));
    assert.match(run.stdout, new RegExp(`^${bad}:4:15: limits\\.maxBatch: `, 'm'));
    assert.match(run.stdout, new RegExp(`^${bad}:6:35: sinks\\.0\\.options\\.url: `, 'm'));
    assert.match(run.stdout, /^3 problems$/m);
    const asJson = await cli(['config', 'check', bad, '--json'], env);
    ok(asJson, 6);
    const report = JSON.parse(asJson.stdout);
    assert.deepEqual(
      report.problems.find((p: { path: string }) => p.path === 'stroe'),
      { message: 'stroe: unknown key; did you mean "store"?', path: 'stroe', line: 3, column: 3 },
    );
    assert.equal(report.ok, false);

    const broken = join(dir.path, 'broken.json');
    writeFileSync(broken, '{\n  "dataDir": "x",\n  "limits": {,}\n}\n');
    const syntax = await cli(['config', 'check', broken], env);
    ok(syntax, 6);
    assert.match(syntax.stdout, new RegExp(`^${broken}:3:14: not valid JSON`, 'm'));
    ok(await cli(['config', 'check', join(dir.path, 'absent.json')], env), 2);
  });

  it('serve runs the server until SIGTERM, as npm start does', async () => {
    const server = start(['serve'], { ...env, NITROGEN_DATA_DIR: join(dir.path, 'data'), NITROGEN_REST_PORT: '0', NITROGEN_MQTT_PORT: '0', NITROGEN_LOG_LEVEL: 'warn', NITROGEN_ADMIN_SECRET: ADMIN_SECRET });
    await until('the server to start', () => /MQTT: \S+/.test(server.output().stdout) || server.child.exitCode !== null);
    const rest = /REST: (\S+)/.exec(server.output().stdout)![1]!;
    assert.equal((await fetch(new URL('/health', rest))).status, 200);
    server.child.kill('SIGTERM');
    assert.equal((await server.done).code, 0);
  });

  it('docs/cli.md documents every command and the exit codes as the table says', () => {
    const doc = readFileSync(join(ROOT, 'docs/cli.md'), 'utf8');
    for (const command of COMMANDS) assert.ok(doc.includes(`### \`nitrogen ${command.name}`), `docs/cli.md has no section for nitrogen ${command.name}`);
    for (const [name, e] of Object.entries(EXIT_CODES)) assert.ok(doc.includes(`| ${e.code} | \`${name}\` | ${e.meaning} |`), `docs/cli.md: exit code ${e.code}`);
  });
});
