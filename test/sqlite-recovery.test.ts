import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SqliteStore, type SqliteStoreOptions } from '../adapters/sqlite/sqlite-store.js';
import { isNitrogenError } from '../core/errors.js';
import type { Message } from '../core/message.js';
import type { Store } from '../core/ports/store.js';
import { exited } from './helpers/process.js';
import { tempDir } from './helpers/temp.js';

/*
 * Crashes, for real: a child process (this file, run with NITROGEN_SQLITE_CHILD set) appends
 * and reports on stdout every range of messages whose append resolved, then dies by SIGKILL,
 * by its own hand or the test's, at any point of journal writes or compactions. The test then
 * opens the same files and checks that every acknowledged message is there exactly once.
 */
interface ChildPlan {
  dir: string;
  options: Partial<SqliteStoreOptions>;
  /** First message number, how many (0: until killed), per append, appends in flight. */
  from: number;
  count: number;
  batch: number;
  concurrency: number;
}

const BASE = Date.UTC(2026, 0, 1);
const message = (n: number): Message => ({ id: `m-${n}`, type: 'telemetry', from: `car-${n % 50}`, ts: new Date(BASE + n).toISOString(), body: { n, pad: 'x'.repeat(100) } });

async function child(plan: ChildPlan): Promise<void> {
  const store = new SqliteStore(plan.dir, { file: 'messages.db', ...plan.options });
  await store.start();
  let next = plan.from;
  const end = plan.count > 0 ? plan.from + plan.count : Infinity;
  const worker = async () => {
    while (next < end) {
      const first = next;
      const last = Math.min(end, first + plan.batch) - 1;
      next = last + 1;
      await store.append(Array.from({ length: last - first + 1 }, (_, i) => message(first + i)));
      process.stdout.write(`acked ${first} ${last}\n`);
    }
  };
  await Promise.all(Array.from({ length: plan.concurrency }, worker));
  process.kill(process.pid, 'SIGKILL');
}

if (process.env.NITROGEN_SQLITE_CHILD) {
  await child(JSON.parse(process.env.NITROGEN_SQLITE_CHILD) as ChildPlan);
} else {
  describe('SQLite store crash recovery', function () {
    this.timeout(120_000);
    let dir: ReturnType<typeof tempDir>;
    let store: SqliteStore | undefined;

    beforeEach(() => {
      dir = tempDir();
    });

    afterEach(async () => {
      await store?.stop();
      store = undefined;
      dir.remove();
    });

    /** Runs a child; `acked` fills with the numbers of the messages whose append resolved. */
    function run(plan: Omit<ChildPlan, 'dir'>): { process: ChildProcess; acked: Set<number>; exit: ReturnType<typeof exited> } {
      const acked = new Set<number>();
      const script = fileURLToPath(import.meta.url);
      const proc = spawn(process.execPath, [script], { env: { ...process.env, NITROGEN_SQLITE_CHILD: JSON.stringify({ ...plan, dir: dir.path }) }, stdio: ['ignore', 'pipe', 'inherit'] });
      let pending = '';
      proc.stdout.on('data', (chunk: Buffer) => {
        const lines = (pending + chunk.toString()).split('\n');
        pending = lines.pop()!;
        for (const line of lines) {
          const [, first, last] = line.split(' ').map(Number);
          for (let n = first!; n <= last!; n++) acked.add(n);
        }
      });
      return { process: proc, acked, exit: exited(proc) };
    }

    async function open(options: Partial<SqliteStoreOptions> = {}): Promise<SqliteStore> {
      store = new SqliteStore(dir.path, { file: 'messages.db', ...options });
      await store.start();
      return store;
    }

    /** Every acknowledged message is in the feed and in queries, none twice; returns how many are stored. */
    async function verify(opened: Store, acked: Set<number>): Promise<number> {
      const feed: string[] = [];
      let position: string | null = null;
      for (let batch; (batch = await opened.readFeed(position, 5000)).messages.length > 0; position = batch.position) feed.push(...batch.messages.map((m) => m.id));
      assert.equal(new Set(feed).size, feed.length, 'no message twice in the feed');
      const queried: string[] = [];
      let cursor: string | undefined;
      do {
        const page = await opened.query({ order: 'asc', limit: 1000, cursor });
        queried.push(...page.items.map((m) => m.id));
        cursor = page.next ?? undefined;
      } while (cursor);
      assert.deepEqual([...queried].sort(), [...feed].sort(), 'queries and the feed hold the same messages');
      const stored = new Set(feed);
      const missing = [...acked].filter((n) => !stored.has(`m-${n}`));
      assert.deepEqual(missing, [], `${missing.length} of ${acked.size} acknowledged messages missing`);
      return feed.length;
    }

    const journal = () => join(dir.path, 'messages.journal');
    const segments = () =>
      readdirSync(journal())
        .filter((name) => name.endsWith('.log'))
        .sort();
    const uncompacted = { compactBytes: 2 ** 30, compactDelayMs: 3_600_000 };

    it('recovers what the journal holds after SIGKILL, before any compaction', async () => {
      const child = run({ options: uncompacted, from: 0, count: 20_000, batch: 500, concurrency: 4 });
      assert.equal((await child.exit).signal, 'SIGKILL');
      assert.equal(child.acked.size, 20_000);
      assert.ok(segments().length > 0);
      assert.equal(await verify(await open(), child.acked), 20_000);
      assert.deepEqual(segments(), ['0000000000020001.log'], 'recovery compacts the journal and starts it afresh');
      assert.equal(readFileSync(join(journal(), segments()[0]!)).length, 0);
    });

    it('ignores a write torn at the end of the journal, which was never acknowledged', async () => {
      const child = run({ options: uncompacted, from: 0, count: 3_000, batch: 100, concurrency: 1 });
      await child.exit;
      const last = join(journal(), segments().at(-1)!);
      // A frame header announcing more than follows, as a write cut short by a crash leaves it.
      const torn = Buffer.alloc(300, 7);
      torn.writeUInt32LE(0x314a464e, 0);
      torn.writeUInt32LE(100_000, 4);
      appendFileSync(last, torn);
      assert.equal(await verify(await open(), child.acked), 3_000);
      assert.deepEqual(
        (await store!.readFeed(null, 1)).messages.map((m) => m.id),
        ['m-0'],
      );
    });

    it('refuses to start over damage in a journal segment that is not the last', async () => {
      const child = run({ options: { ...uncompacted, segmentBytes: 64 * 1024 }, from: 0, count: 3_000, batch: 100, concurrency: 1 });
      await child.exit;
      assert.ok(segments().length > 2);
      const first = join(journal(), segments()[0]!);
      const bytes = readFileSync(first);
      bytes[bytes.length >> 1]! ^= 0xff;
      writeFileSync(first, bytes);
      await assert.rejects(open(), (err) => isNitrogenError(err, 'NITROGEN_ERR_STORE') && /damaged/.test((err as Error).message));
      store = undefined;
      assert.ok(existsSync(first), 'the damaged segment stays for inspection');
    });

    it('loses nothing and duplicates nothing when killed while compacting, again and again', async () => {
      // Compactions of a few dozen kilobytes run back to back: a kill lands in one most of the time.
      const options = { compactBytes: 32 * 1024, compactDelayMs: 5 };
      const acked = new Set<number>();
      for (let round = 0; round < 5; round++) {
        const child = run({ options, from: round * 1_000_000, count: 0, batch: 50, concurrency: 4 });
        while (child.acked.size < 2_000 + round * 500) await new Promise((resolve) => setTimeout(resolve, 10));
        child.process.kill('SIGKILL');
        await child.exit;
        for (const n of child.acked) acked.add(n);
        const stored = await verify(await open(options), acked);
        assert.ok(stored >= acked.size);
        await store!.stop();
        store = undefined;
      }
    });

    it('restarts with a large uncompacted journal in reasonable time', async function () {
      const child = run({ options: { ...uncompacted, tailBytes: 256 * 2 ** 20 }, from: 0, count: 200_000, batch: 2_000, concurrency: 2 });
      await child.exit;
      const started = performance.now();
      const opened = await open();
      const seconds = (performance.now() - started) / 1000;
      console.log(`      restart compacted a journal of 200,000 messages in ${seconds.toFixed(1)} s`);
      assert.equal((await opened.feedLag(null)).count, 200_000);
      assert.equal(await verify(opened, child.acked), 200_000);
    });
  });
}
