import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { exited } from './helpers/process.js';
import { startServer, type TestServer } from './helpers/server.js';
import { tempDir } from './helpers/temp.js';

const DEVICE = fileURLToPath(new URL('./helpers/client-device.js', import.meta.url));

interface Device {
  child: ChildProcess;
  /** Resolves when the device has printed `line`. */
  printed(line: string): Promise<void>;
  lines(): string[];
}

function runDevice(options: { url: string; id: string; secret: string; file: string; first: number; count: number; drain: boolean; burst?: number }): Device {
  const child = spawn(process.execPath, ['--enable-source-maps', DEVICE, JSON.stringify(options)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const waiters: Array<{ line: string; resolve(): void }> = [];
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    for (const w of waiters.splice(0)) out.split('\n').includes(w.line) ? w.resolve() : waiters.push(w);
  });
  const lines = () => out.split('\n').filter(Boolean);
  return {
    child,
    lines,
    printed: (line) =>
      new Promise((resolve, reject) => {
        if (lines().includes(line)) return resolve();
        waiters.push({ line, resolve });
        child.once('exit', (code, signal) => (lines().includes(line) ? resolve() : reject(new Error(`the device exited (${code ?? signal}) before printing "${line}":\n${out}${err}`))));
      }),
  };
}

async function kill(device: Device): Promise<void> {
  device.child.kill('SIGKILL');
  await exited(device.child);
}

/** The `n` of every message the device stored, in store order. */
async function storedNumbers(t: TestServer, from: string): Promise<number[]> {
  const numbers: number[] = [];
  let cursor: string | null = null;
  do {
    const res: { status: number; body: { messages: Array<{ body: { n: number } }>; next: string | null } } = await t.api('GET', `/messages?from=${from}&limit=1000${cursor ? `&cursor=${cursor}` : ''}`);
    assert.equal(res.status, 200);
    numbers.push(...res.body.messages.map((m) => m.body.n));
    cursor = res.body.next;
  } while (cursor);
  return numbers;
}

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

describe('client: the durable queue against crashes of the device and an absent server', function () {
  this.timeout(60_000);
  const dir = tempDir('nitrogen-client-');
  after(() => dir.remove());

  it('queues while the server is down, survives SIGKILL of the device, and delivers every message once when the server is back', async () => {
    // Register the device, learn the ports, then take the server away.
    let t = await startServer();
    const [car] = await t.register([{ type: 'device' }]);
    const ports = { mqtt: Number(new URL(t.mqttUrl).port), rest: Number(new URL(t.restUrl).port) };
    const dataDir = t.dataDir;
    await t.server.stop();
    const file = join(dir.path, 'down.queue');
    const base = { url: t.restUrl, id: car!.id, secret: car!.secret, file };

    const first = runDevice({ ...base, first: 0, count: 40, drain: false });
    await first.printed('all-queued');
    assert.ok(first.lines().includes('restored 0'));
    await kill(first);

    const second = runDevice({ ...base, first: 40, count: 40, drain: false });
    await second.printed('all-queued');
    assert.ok(second.lines().includes('restored 40'), `the restarted device found its queue: ${second.lines()[0]}`);
    await kill(second);
    // The file as it is now, with 80 queued: what a power cut would leave if the records saying
    // they were acknowledged had not reached the disk.
    copyFileSync(file, `${file}.before-acks`);

    t = await startServer(
      {
        plugins: [
          { use: 'mqtt', options: { port: ports.mqtt } },
          { use: 'rest', options: { port: ports.rest } },
        ],
      },
      dataDir,
    );
    try {
      const third = runDevice({ ...base, first: 80, count: 20, drain: true });
      await third.printed('drained');
      assert.ok(third.lines().includes('restored 80'));
      await exited(third.child);
      assert.deepEqual(
        (await storedNumbers(t, car!.id)).sort((a, b) => a - b),
        range(0, 100),
      );

      // Sent again after that "power cut", under the ids they were first sent with: the server
      // acknowledges them and stores none a second time.
      copyFileSync(`${file}.before-acks`, file);
      const fourth = runDevice({ ...base, first: 100, count: 0, drain: true });
      await fourth.printed('drained');
      assert.ok(fourth.lines().includes('restored 80'));
      await exited(fourth.child);
      assert.deepEqual(
        (await storedNumbers(t, car!.id)).sort((a, b) => a - b),
        range(0, 100),
      );
    } finally {
      await t.stop();
    }
  });

  it('killed while sending to a live server, the device delivers after its restart every message it had queued, none twice', async () => {
    const t = await startServer();
    try {
      const [car] = await t.register([{ type: 'device' }]);
      const base = { url: t.restUrl, id: car!.id, secret: car!.secret, file: join(dir.path, 'live.queue') };
      const device = runDevice({ ...base, first: 0, count: 5000, drain: true, burst: 50 });
      await device.printed('queued 1000');
      await kill(device);
      const queued = device
        .lines()
        .filter((l) => l.startsWith('queued '))
        .map((l) => Number(l.slice(7)));

      const restarted = runDevice({ ...base, first: 2000, count: 0, drain: true });
      await restarted.printed('drained');
      await exited(restarted.child);
      const restored = Number(restarted.lines()[0]!.split(' ')[1]);
      assert.ok(restored > 0, 'the device was killed with messages still in its queue');
      const stored = await storedNumbers(t, car!.id);
      assert.equal(new Set(stored).size, stored.length, 'no message is stored twice');
      const missing = queued.filter((n) => !stored.includes(n));
      assert.deepEqual(missing, [], 'every message the device had queued is stored');
    } finally {
      await t.stop();
    }
  });
});
