import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { exited } from './helpers/process.js';
import { tempDir } from './helpers/temp.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const TOOLS = ['curl', 'jq', 'mosquitto_pub'];

/** The first ```sh block after a heading of the README. */
function shellBlock(heading: string): string {
  const section = README.slice(README.indexOf(`\n## ${heading}\n`));
  const block = /```sh\n([\s\S]*?)```/.exec(section)?.[1];
  assert.ok(block, `README.md has no sh block under "## ${heading}"`);
  return block;
}

function missingTools(): string[] {
  return TOOLS.filter((tool) => {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
      return false;
    } catch {
      return true;
    }
  });
}

/** Resolves once `check` holds on the text gathered so far; fails with the text otherwise. */
async function until(what: string, text: () => string, check: (text: string) => boolean, ms = 20_000): Promise<void> {
  for (const end = Date.now() + ms; !check(text());) {
    if (Date.now() > end) throw new Error(`${what}: not seen within ${ms} ms in:\n${text()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * The README as a new user meets it: `npm start` in the project, the First steps pasted into a
 * shell beside it, and the signal Docker and systemd send to stop it.
 */
describe('README', function () {
  this.timeout(120_000);
  let dir: ReturnType<typeof tempDir>;
  let npm: ChildProcess;
  let out = '';
  let rest: string;
  let mqtt: URL;
  let serverPid: number | undefined;

  before(async () => {
    dir = tempDir();
    const env: NodeJS.ProcessEnv = { ...process.env, NITROGEN_DATA_DIR: join(dir.path, 'data'), NITROGEN_REST_PORT: '0', NITROGEN_MQTT_PORT: '0', NITROGEN_LOG_LEVEL: 'info' };
    delete env.NITROGEN_ADMIN_SECRET;
    delete env.NITROGEN_CONFIG;
    npm = spawn('npm', ['start'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    npm.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    npm.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    // npm start builds first, then runs the server.
    await until(
      'npm start printing its endpoints',
      () => out,
      (text) => /MQTT: \S+/.test(text) || npm.exitCode !== null,
      100_000,
    );
    assert.equal(npm.exitCode, null, out);
    rest = /REST: (\S+)/.exec(out)![1]!;
    mqtt = new URL(/MQTT: (\S+)/.exec(out)![1]!);
    serverPid = Number(/"pid":(\d+)/.exec(out)?.[1]) || undefined;
  });

  after(async () => {
    if (npm && npm.exitCode === null && npm.signalCode === null) npm.kill('SIGKILL');
    // A server that outlived npm would keep its ports: end it however the test went.
    if (serverPid) {
      try {
        process.kill(serverPid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    dir?.remove();
  });

  it('runs the First steps as written: register a device, send over MQTT and REST, read back, follow live', async function () {
    const missing = missingTools();
    if (missing.length > 0) {
      // CI installs them (.ci/run); elsewhere the check is skipped, saying why.
      if (process.env.CI === 'true') assert.fail(`the README's First steps need ${missing.join(', ')}`);
      console.log(`    skipped: the README's First steps need ${missing.join(', ')} (apt-get install curl jq mosquitto-clients)`);
      this.skip();
    }
    let script = shellBlock('First steps');
    // Only the two addresses change: the server listens on free ports here.
    for (const [pattern, value] of [
      [/^API=\S+/m, `API=${rest}`],
      [/^MQTT_PORT=\S+/m, `MQTT_PORT=${mqtt.port}`],
    ] as const) {
      assert.match(script, pattern);
      script = script.replace(pattern, value);
    }
    // -e: any step that fails stops the script, which the test reports with its output.
    const shell = spawn('bash', ['-euo', 'pipefail', '-c', script], { cwd: dir.path, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let shellOut = '';
    let shellErr = '';
    shell.stdout.on('data', (d: Buffer) => (shellOut += d.toString()));
    shell.stderr.on('data', (d: Buffer) => (shellErr += d.toString()));
    const text = () => `${shellOut}\n[stderr]\n${shellErr}${shell.exitCode !== null ? `\n[the script exited with ${shell.exitCode}]` : ''}`;
    try {
      // Once the stream is open, everything before it has run; the stream then waits.
      await until('the stream opening', text, (t) => t.includes(': connected') || shell.exitCode !== null);
      assert.equal(shell.exitCode, null, text());
      // jq prints each answer from a line "{" to a line "}": the query's is the last before the stream.
      const answers = shellOut.slice(0, shellOut.indexOf(': connected')).split(/^(?=\{$)/m);
      const query = JSON.parse(answers.at(-1)!) as { messages: Array<{ from: string; type: string; body: unknown }> };
      assert.deepEqual(
        query.messages.map((m) => [m.from, m.type, m.body]).sort(),
        [
          ['car-1', 'location', { lat: 47.6, lon: -122.3 }],
          ['car-1', 'telemetry', { speed: 88 }],
        ],
        text(),
      );

      // Something car-1 sends now shows on the stream.
      const admin = await post(`${rest}/principals/auth`, { id: 'admin', secret: readFileSync(join(dir.path, 'data', 'admin.secret'), 'utf8').trim() });
      const car = await post(`${rest}/principals/car-1/impersonate`, {}, admin.accessToken);
      await post(`${rest}/messages`, { type: 'telemetry', body: { speed: 91 } }, car.accessToken);
      await until('the live message', text, (t) => /^data: .*"speed":91/m.test(t));
    } finally {
      if (shell.exitCode === null) process.kill(-shell.pid!, 'SIGTERM');
    }
  });

  it('stops the server when npm start gets SIGTERM, as Docker and systemd send it', async () => {
    const origin = new URL(rest).origin;
    assert.equal((await fetch(`${origin}/health`)).status, 200);
    assert.ok(serverPid, `the server's pid is in its log:\n${out}`);
    npm.kill('SIGTERM');
    await exited(npm);
    // The server itself got the signal: it logged that it was stopping, it ended, and its ports are closed.
    await until(
      'the server process ending',
      () => (alive(serverPid!) ? 'running' : 'gone'),
      (state) => state === 'gone',
    );
    assert.match(out, /"msg":"stopping"/);
    await assert.rejects(fetch(`${origin}/health`), 'the server still answers after npm exited');
  });
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function post(url: string, body: unknown, token?: string): Promise<any> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: JSON.stringify(body) });
  const json = await res.json();
  assert.ok(res.ok, `${url}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}
