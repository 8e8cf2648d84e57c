import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClientError } from '../src/errors.js';
import { FileStore, type FsyncPolicy } from '../src/node/file-store.js';
import type { AppendedRecord, StoredRecord } from '../src/queue/queue-store.js';

function record(n: number, pad = 0): AppendedRecord & { durable: boolean } {
  const json = JSON.stringify({ id: `m${n}`, type: 't', body: { n, pad: 'x'.repeat(pad) } });
  return {
    id: `m${n}`,
    json,
    bytes: Buffer.byteLength(json),
    durable: false,
    markDurable() {
      this.durable = true;
    },
  };
}

/** A store on `path`, with what it reports. */
function store(path: string, fsync: FsyncPolicy = 'always') {
  const reports: { errors: ClientError[]; repaired: number[] } = { errors: [], repaired: [] };
  const s = new FileStore({ path, fsync, onError: (e) => reports.errors.push(e), onRepaired: (n) => reports.repaired.push(n) });
  return { store: s, reports };
}

const numbers = (records: StoredRecord[]) => records.map((r) => (JSON.parse(r.json) as { body: { n: number } }).body.n);

/** Resolves once every record is durable: the write finished. */
async function durable(records: Array<{ durable: boolean }>): Promise<void> {
  while (records.some((r) => !r.durable)) await new Promise((resolve) => setImmediate(resolve));
}

describe('the queue file (Node)', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'nitrogen-queue-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps appended records across a restart, without the ones removed', async () => {
    const path = join(dir, 'q');
    const first = store(path);
    assert.deepEqual(await first.store.load(), []);
    const records = [1, 2, 3, 4].map((n) => record(n));
    for (const r of records) first.store.append(r);
    await durable(records);
    first.store.removeOldest(2);
    await first.store.close();
    const second = store(path);
    assert.deepEqual(numbers(await second.store.load()), [3, 4]);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    await second.store.close();
  });

  it('cuts off a record a crash left half-written, and says how many bytes', async () => {
    const path = join(dir, 'q');
    const first = store(path);
    await first.store.load();
    const records = [1, 2].map((n) => record(n));
    for (const r of records) first.store.append(r);
    await first.store.close();
    // What a crash in the middle of a write leaves: the last record without its end, or garbage.
    truncateSync(path, statSync(path).size - 3);
    appendFileSync(path, Buffer.from([1, 2, 3]));
    const second = store(path);
    assert.deepEqual(numbers(await second.store.load()), [1]);
    assert.equal(second.reports.repaired.length, 1);
    assert.ok(second.reports.repaired[0]! > 3);
    await second.store.close();
  });

  it('truncates the file once everything in it is removed', async () => {
    const path = join(dir, 'q');
    const { store: s } = store(path, 'never');
    await s.load();
    const batch = Array.from({ length: 100 }, (_, n) => record(n, 1000)); // ~100 KiB
    for (const r of batch) s.append(r);
    await durable(batch);
    assert.ok(statSync(path).size > 100_000);
    s.removeOldest(100);
    await s.close();
    assert.equal(statSync(path).size, 8, 'only the header is left');
  });

  it('rewrites the file with only the live records once removed ones outweigh them', async () => {
    const path = join(dir, 'q');
    const { store: s } = store(path, 'never');
    await s.load();
    // 5,000 records of 1 KiB, 4,999 of them removed: past the 4 MiB of removed records that trigger a rewrite.
    const many = Array.from({ length: 5000 }, (_, n) => record(n, 1000));
    for (const r of many) s.append(r);
    await durable(many);
    s.removeOldest(4999);
    await s.close();
    assert.ok(statSync(path).size < 2000, `rewritten to ${statSync(path).size} bytes`);
    const check = store(path);
    assert.deepEqual(numbers(await check.store.load()), [4999]);
    await check.store.close();
  });

  it('refuses a file that is not a queue file, and one a live process holds', async () => {
    const path = join(dir, 'q');
    writeFileSync(path, 'hello');
    await assert.rejects(store(path).store.load(), (err: ClientError) => err.code === 'NITROGEN_CLIENT_BAD_OPTIONS' && err.details?.option === 'queue.file');
    assert.ok(!existsSync(`${path}.lock`), 'a store that failed to open holds no lock');

    const other = join(dir, 'held');
    const holder = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
    writeFileSync(`${other}.lock`, String(holder.pid));
    try {
      await assert.rejects(store(other).store.load(), (err: ClientError) => err.code === 'NITROGEN_CLIENT_QUEUE_LOCKED' && err.details?.pid === holder.pid);
    } finally {
      holder.kill();
      await once(holder, 'exit');
    }
    // Its owner is gone: the lock is taken over.
    const after = store(other);
    assert.deepEqual(await after.store.load(), []);
    assert.equal(readFileSync(`${other}.lock`, 'utf8'), String(process.pid));
    // And a second store in this process is refused while the first is open.
    await assert.rejects(store(other).store.load(), (err: ClientError) => err.code === 'NITROGEN_CLIENT_QUEUE_LOCKED');
    await after.store.close();
  });
});
