import Database from 'better-sqlite3';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MemoryStore } from '../adapters/memory/index.js';
import { SqliteStore } from '../adapters/sqlite/index.js';
import { isNitrogenError } from '../core/errors.js';
import type { Message } from '../core/message.js';
import type { MessageQuery, Store } from '../core/ports/store.js';
import { tempDir } from './helpers/temp.js';

/** A small seeded generator (mulberry32): the same cases on every run. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const BASE = Date.UTC(2026, 0, 1);
const iso = (ms: number) => new Date(ms).toISOString();

async function everything(store: Store, query: Omit<MessageQuery, 'limit' | 'cursor'>, limit: number, between?: () => Promise<void>): Promise<Message[]> {
  const out: Message[] = [];
  let cursor: string | undefined;
  for (;;) {
    const page = await store.query({ ...query, limit, cursor });
    out.push(...page.items);
    if (page.next === null) return out;
    cursor = page.next;
    await between?.();
  }
}

async function wholeFeed(store: Store, limit: number): Promise<Message[]> {
  const out: Message[] = [];
  let position: string | null = null;
  for (;;) {
    const batch = await store.readFeed(position, limit);
    if (batch.messages.length === 0) return out;
    out.push(...batch.messages);
    position = batch.position;
  }
}

describe('SQLite store', function () {
  this.timeout(120_000);
  let dir: ReturnType<typeof tempDir>;
  let store: SqliteStore;

  beforeEach(() => {
    dir = tempDir();
  });

  afterEach(async () => {
    await store?.stop();
    dir.remove();
  });

  it('answers like the memory store, whatever is in chunks and whatever is still in the tail', async () => {
    const next = random(42);
    const pick = <T>(items: readonly T[]) => items[Math.floor(next() * items.length)]!;
    store = new SqliteStore(dir.path, { file: 'messages.db' });
    await store.start();
    const reference = new MemoryStore();
    const senders = ['car-1', 'car-2', 'car-3', 'app-1'];
    let made = 0;
    for (let round = 0; round < 80; round++) {
      const batch: Message[] = [];
      for (let i = 0, n = 1 + Math.floor(next() * 60); i < n; i++) {
        // Client-chosen times up to a minute apart, out of order, often equal: chunks get cut by
        // span and overlap one another. Ids repeat, within and across senders and batches.
        const m: Message = { id: next() < 0.1 ? `dup-${Math.floor(next() * 20)}` : `m-${made++}`, type: pick(['telemetry', 'location', 'command']), from: pick(senders), ts: iso(BASE + Math.floor(next() * 120) * 500), body: { n: made } };
        if (next() < 0.3) m.to = pick(['car-1', 'app-1', 'app-2']);
        if (next() < 0.4) m.tags = [...new Set([pick(['red', 'blue', 'green']), pick(['red', 'blue', 'green'])])];
        if (next() < 0.2) m.expires = iso(BASE + Math.floor(next() * 120) * 1000);
        batch.push(m);
      }
      await Promise.all([store.append(batch), reference.append(batch)]);
      if (next() < 0.3) await store.compact();
    }
    const ids = (messages: Message[]) => messages.map((m) => `${m.from}/${m.id}`);
    assert.deepEqual(ids(await wholeFeed(store, 7)), ids(await wholeFeed(reference, 1000)), 'the feed, in commit order');
    for (let q = 0; q < 60; q++) {
      const query: Omit<MessageQuery, 'limit' | 'cursor'> = { order: next() < 0.5 ? 'asc' : 'desc' };
      if (next() < 0.4) query.from = [...new Set([pick(senders), pick(senders)])];
      if (next() < 0.2) query.to = [pick(['car-1', 'app-1'])];
      if (next() < 0.3) query.type = [pick(['telemetry', 'location', 'command'])];
      if (next() < 0.3) query.tags = [pick(['red', 'blue', 'green'])];
      if (next() < 0.4) query.since = iso(BASE + Math.floor(next() * 60) * 1000);
      if (next() < 0.4) query.until = iso(BASE + Math.floor(30 + next() * 40) * 1000);
      if (next() < 0.2) query.scope = { from: [pick(senders)], to: [pick(['car-1', 'app-1'])] };
      const limit = pick([1, 3, 10, 100]);
      // Compaction between pages must not make a page skip or repeat anything.
      const found = await everything(store, query, limit, async () => {
        if (next() < 0.3) await store.compact();
      });
      assert.deepEqual(ids(found), ids(await everything(reference, query, 1000)), JSON.stringify({ query, limit }));
    }
    for (const id of ['m-5', 'm-500', 'dup-3', 'dup-7', 'no-such-id']) assert.deepEqual(await store.get(id), await reference.get(id), id);
    const now = new Date(BASE + 60_000);
    assert.equal(await store.purgeExpired(now, new Date(BASE + 10_000)), await reference.purgeExpired(now, new Date(BASE + 10_000)));
    assert.deepEqual(ids(await everything(store, { order: 'asc' }, 50)), ids(await everything(reference, { order: 'asc' }, 1000)), 'after a purge');
    assert.deepEqual(ids(await wholeFeed(store, 100)), ids(await wholeFeed(reference, 1000)), 'the feed after a purge');
  });

  it('keeps messages, feed positions and duplicates apart across restarts, compacted or not', async () => {
    store = new SqliteStore(dir.path, { file: 'messages.db' });
    await store.start();
    const m = (id: string, from = 'car-1'): Message => ({ id, type: 'telemetry', from, ts: iso(BASE), body: id });
    await store.append([m('a'), m('b')]);
    await store.compact();
    await store.append([m('c'), m('a'), m('a', 'car-2')]);
    const position = (await store.readFeed(null, 10)).position;
    await store.stop();
    store = new SqliteStore(dir.path, { file: 'messages.db' });
    await store.start();
    await store.append([m('b'), m('c'), m('d')]);
    assert.deepEqual(
      (await store.readFeed(null, 10)).messages.map((x) => `${x.from}/${x.id}`),
      ['car-1/a', 'car-1/b', 'car-1/c', 'car-2/a', 'car-1/d'],
    );
    assert.deepEqual(
      (await store.readFeed(position, 10)).messages.map((x) => x.id),
      ['d'],
      'positions keep counting after a restart',
    );
  });

  it('moves the messages of a database written before chunks into chunks, keeping their feed positions', async () => {
    // The schema of the store before chunks: a row per message, numbered by an AUTOINCREMENT seq.
    const old = new Database(join(dir.path, 'messages.db'));
    old.exec(`CREATE TABLE messages (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, ts INTEGER NOT NULL, sender TEXT NOT NULL, recipient TEXT, type TEXT NOT NULL, expires INTEGER, committed INTEGER NOT NULL, envelope TEXT NOT NULL);
      CREATE TABLE message_tags (tag TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (tag, seq)) WITHOUT ROWID;
      CREATE TABLE checkpoints (consumer TEXT PRIMARY KEY, position INTEGER NOT NULL);`);
    const insert = old.prepare('INSERT INTO messages (seq, id, ts, sender, type, committed, envelope) VALUES (?, ?, ?, ?, ?, ?, ?)');
    const stored: Message[] = [];
    // Gaps, as purges leave them.
    for (const seq of [1, 2, 5, 6, 7, 12]) {
      const m: Message = { id: `old-${seq}`, type: 'telemetry', from: `car-${seq % 2}`, ts: iso(BASE + seq * 1000), body: { seq }, tags: ['t'] };
      insert.run(seq, m.id, BASE + seq * 1000, m.from, m.type, BASE, JSON.stringify(m));
      stored.push(m);
    }
    old.prepare('INSERT INTO checkpoints (consumer, position) VALUES (?, ?)').run('sink:a', 6);
    old.close();
    store = new SqliteStore(dir.path, { file: 'messages.db' });
    await store.start();
    assert.deepEqual(await everything(store, { order: 'asc', tags: ['t'] }, 2), stored);
    assert.deepEqual(await store.get('old-5'), stored[2]);
    assert.equal(await store.getCheckpoint('sink:a'), '6');
    assert.deepEqual(
      (await store.readFeed('6', 10)).messages.map((m) => m.id),
      ['old-7', 'old-12'],
    );
    await store.append([{ id: 'new', type: 'telemetry', from: 'car-1', ts: iso(BASE), body: null }]);
    assert.deepEqual(await store.readFeed('12', 10), { messages: [await store.get('new')], position: '13' }, 'new messages are numbered after the old');
    const check = new Database(join(dir.path, 'messages.db'), { readonly: true });
    assert.equal(check.prepare<[], { n: number }>("SELECT count(*) AS n FROM sqlite_master WHERE name IN ('messages', 'message_tags')").get()!.n, 0, 'the old tables are gone');
    check.close();
  });

  it('waits for compaction when its tail is full, and takes everything in the end', async () => {
    // 1 MiB of tail for 10 MB of messages: appends must wait for compaction to make room, again and again.
    store = new SqliteStore(dir.path, { file: 'messages.db', tailBytes: 2 ** 20, compactBytes: 2 ** 30, compactDelayMs: 10 });
    await store.start();
    const body = { text: 'x'.repeat(400) };
    const batches = Array.from({ length: 50 }, (_, b) => Array.from({ length: 500 }, (_, i) => ({ id: `m-${b}-${String(i).padStart(3, '0')}`, type: 'telemetry', from: `car-${i % 10}`, ts: iso(BASE + b * 1000), body })));
    await Promise.all(batches.map((batch) => store.append(batch)));
    assert.equal((await store.feedLag(null)).count, 25_000);
    const page = await store.query({ order: 'desc', limit: 2, from: ['car-9'] });
    assert.deepEqual(
      page.items.map((x) => x.id),
      ['m-49-499', 'm-49-489'],
    );
  });

  it('refuses a message larger than a quarter of its tail with NITROGEN_ERR_STORE', async () => {
    store = new SqliteStore(dir.path, { file: 'messages.db', tailBytes: 2 ** 20 });
    await store.start();
    const big: Message = { id: 'big', type: 'telemetry', from: 'car-1', ts: iso(BASE), body: 'x'.repeat(200_000) };
    await assert.rejects(store.append([big]), (err) => isNitrogenError(err, 'NITROGEN_ERR_STORE'));
    await store.append([{ ...big, id: 'small', body: 'x' }]);
    assert.equal((await store.get('small'))?.body, 'x');
  });

  it('refuses a second owner while one runs, and takes over from one that died', async () => {
    store = new SqliteStore(dir.path, { file: 'messages.db' });
    await store.start();
    await store.append([{ id: 'a', type: 'telemetry', from: 'car-1', ts: iso(BASE), body: 1 }]);
    const second = new SqliteStore(dir.path, { file: 'messages.db' });
    await assert.rejects(second.start(), (err) => isNitrogenError(err, 'NITROGEN_ERR_STORE') && /in use by process/.test((err as Error).message));
    // The refused one touched nothing: the owner goes on, and its journal is still its own.
    await store.append([{ id: 'b', type: 'telemetry', from: 'car-1', ts: iso(BASE + 1), body: 2 }]);
    await store.stop();

    // A claim left by a process that no longer runs (a SIGKILLed server) is taken over.
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
    writeFileSync(join(dir.path, 'messages.journal.owner'), dead);
    store = new SqliteStore(dir.path, { file: 'messages.db' });
    await store.start();
    assert.deepEqual(
      (await store.query({ order: 'asc', limit: 10 })).items.map((m) => m.id),
      ['a', 'b'],
    );
    await store.stop();

    // So is one holding our own pid that this process did not write: a restarted container's server has the same pid.
    writeFileSync(join(dir.path, 'messages.journal.owner'), String(process.pid));
    store = new SqliteStore(dir.path, { file: 'messages.db' });
    await store.start();
    assert.equal((await store.feedLag(null)).count, 2);
  });
});
