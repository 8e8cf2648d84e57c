import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { exited } from './helpers/process.js';
import { startServer, type TestServer } from './helpers/server.js';

const README = fileURLToPath(new URL('../../README.md', import.meta.url));

/** The README's JavaScript blocks that import the client: the device's, then the app's. */
function snippets(): string[] {
  const blocks = [...readFileSync(README, 'utf8').matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]!);
  return blocks.filter((b) => b.includes("from '@nitrogen/client'"));
}

/** Runs a snippet as a module inside the repository (so `@nitrogen/client` resolves), from `cwd`. */
function run(dir: string, name: string, code: string, env: Record<string, string>): { child: ChildProcess; output: () => string; printed(text: string): Promise<void> } {
  const file = join(dir, `${name}.mjs`);
  writeFileSync(file, code);
  const child = spawn(process.execPath, [file], { cwd: dir, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const waiting: Array<{ text: string; resolve(): void }> = [];
  const seen = (d: Buffer) => {
    out += d.toString();
    for (const w of waiting.splice(0)) out.includes(w.text) ? w.resolve() : waiting.push(w);
  };
  child.stdout.on('data', seen);
  child.stderr.on('data', seen);
  return {
    child,
    output: () => out,
    printed: (text) =>
      new Promise((resolve, reject) => {
        if (out.includes(text)) return resolve();
        waiting.push({ text, resolve });
        child.once('exit', (code) => (out.includes(text) ? resolve() : reject(new Error(`${name} exited (${code}) without printing ${text}:\n${out}`))));
      }),
  };
}

describe("client: the README's device and app in ten lines", function () {
  this.timeout(30_000);
  let t: TestServer;
  const dir = fileURLToPath(new URL(`./readme-${process.pid}`, import.meta.url));
  const children: ChildProcess[] = [];

  before(async () => {
    t = await startServer();
    mkdirSync(dir, { recursive: true });
  });
  after(async () => {
    for (const c of children) c.kill();
    await Promise.all(children.map((c) => exited(c)));
    await t.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('run as written against a real server: the device sends and answers, the app follows and commands', async () => {
    const [device, app] = snippets();
    assert.ok(device && app, 'the README shows a device and an app');
    assert.ok(device.split('\n').filter(Boolean).length <= 10 && app.split('\n').filter(Boolean).length <= 10, 'ten lines each');
    const [car, dash] = await t.register([
      { type: 'device', id: 'car-1' },
      { type: 'app', id: 'dash' },
    ]);
    for (const action of ['send', 'subscribe', 'view']) await t.grant({ issuedTo: 'dash', principalFor: 'car-1', action, authorized: true });
    const local = (code: string) => code.replaceAll('http://127.0.0.1:3000/api/v1', t.restUrl);

    const carProcess = run(dir, 'device', local(device), { CAR_SECRET: car!.secret });
    children.push(carProcess.child);
    // Commands reach a device that is connected and subscribed: the device subscribes as it
    // connects, before its second reading (a second later, on the same connection), so once that
    // is stored its handler is in place.
    while ((await t.api('GET', '/messages?from=car-1&limit=2')).body.messages.length < 2) {
      if (carProcess.child.exitCode !== null) assert.fail(`the device exited:\n${carProcess.output()}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const dashProcess = run(dir, 'app', local(app), { DASH_SECRET: dash!.secret });
    children.push(dashProcess.child);
    await dashProcess.printed("{ unlocked: 'driver' }");
    // The app's subscription prints the device's telemetry as it comes (a line with its speed).
    await dashProcess.printed(' 88\n');
    const stored = await t.api('GET', '/messages?from=dash&type=note');
    assert.equal(stored.body.messages[0].body, 'stored once the server has it on disk');
  });
});
