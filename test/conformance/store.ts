import assert from 'node:assert/strict';
import { isNitrogenError } from '../../core/errors.js';
import type { Message } from '../../core/message.js';
import type { MessageQuery, Store } from '../../core/ports/store.js';

/**
 * The Store port's conformance suite (aedes-persistence's idea): every Store adapter runs it.
 * `open` returns a started, empty store; `reopen`, when given, closes a store and opens the
 * same data again, to check that appended messages survive.
 */
export interface StoreHarness {
  open(): Promise<Store>;
  reopen?(store: Store): Promise<Store>;
  close(store: Store): Promise<void>;
}

let seq = 0;
function msg(fields: Partial<Message> & { ts: string }): Message {
  return { id: `m-${++seq}-${Math.random().toString(36).slice(2, 8)}`, type: 'telemetry', from: 'car-1', body: { n: seq }, ...fields };
}

function at(minute: number, second = 0): string {
  return new Date(Date.UTC(2026, 0, 1, 0, minute, second)).toISOString();
}

async function all(store: Store, query: Omit<MessageQuery, 'limit' | 'cursor'>, limit: number): Promise<Message[]> {
  const out: Message[] = [];
  let cursor: string | undefined;
  for (let pages = 0; pages < 1000; pages++) {
    const page = await store.query({ ...query, limit, cursor });
    assert.ok(page.items.length <= limit, 'a page holds at most limit items');
    out.push(...page.items);
    if (page.next === null) return out;
    cursor = page.next;
  }
  throw new Error('paging did not end');
}

const ids = (messages: Message[]) => messages.map((m) => m.id);

export function storeConformance(label: string, harness: StoreHarness): void {
  describe(`Store conformance: ${label}`, function () {
    this.timeout(30_000);
    let store: Store;

    beforeEach(async () => {
      store = await harness.open();
    });

    afterEach(async () => {
      await harness.close(store);
    });

    it('returns an appended message unchanged (read-your-writes)', async () => {
      const m = msg({ ts: at(1), to: 'app-1', tags: ['a', 'ü'], responseTo: ['x'], expires: at(59), body: { speed: 88.5, text: 'héllo ✓ 🚗', nested: [1, null, true] } });
      await store.append([m]);
      assert.deepEqual(await store.get(m.id), m);
      assert.equal(await store.get('no-such-id'), null);
    });

    it('is idempotent by sender and id, across and within batches; the first copy wins', async () => {
      const first = msg({ ts: at(1) });
      await store.append([first, { ...first, body: 'same batch' }]);
      await store.append([{ ...first, body: 'second batch' }]);
      assert.deepEqual(await store.get(first.id), first);
      const page = await store.query({ order: 'asc', limit: 10 });
      assert.deepEqual(ids(page.items), [first.id]);
    });

    it("keeps another sender's message with the same client-chosen id", async () => {
      const a = msg({ ts: at(1), id: 'shared-id', from: 'car-1', body: 'a' });
      const b = msg({ ts: at(2), id: 'shared-id', from: 'car-2', body: 'b' });
      await store.append([a]);
      await store.append([b]);
      assert.deepEqual((await store.get('shared-id'))!.body, 'a', 'get answers the first stored');
      assert.deepEqual((await store.get('shared-id', 'car-2'))!.body, 'b', 'or the one of the sender asked for');
      assert.equal(await store.get('shared-id', 'car-3'), null);
      assert.deepEqual(
        (await all(store, { order: 'asc', from: ['car-2'] }, 10)).map((m) => m.body),
        ['b'],
      );
      assert.equal((await store.readFeed(null, 10)).messages.length, 2);
    });

    it('stores every message of many concurrent appends', async () => {
      const batches = Array.from({ length: 20 }, (_, b) => Array.from({ length: 25 }, (_, i) => msg({ ts: at(b, i) })));
      await Promise.all(batches.map((batch) => store.append(batch)));
      const stored = await all(store, { order: 'asc' }, 1000);
      assert.equal(stored.length, 500);
      assert.deepEqual(new Set(ids(stored)), new Set(batches.flat().map((m) => m.id)));
    });

    it('keeps a 200 KiB body intact', async () => {
      const big = msg({ ts: at(1), body: { blob: 'x'.repeat(200 * 1024), unicode: '日本語' } });
      await store.append([big]);
      assert.deepEqual(await store.get(big.id), big);
    });

    describe('query', () => {
      let fixture: Message[];
      beforeEach(async () => {
        fixture = [
          msg({ ts: at(1), from: 'car-1', type: 'telemetry', tags: ['eu'] }),
          msg({ ts: at(2), from: 'car-2', type: 'location', tags: ['eu', 'fleet-a'] }),
          msg({ ts: at(3), from: 'car-1', type: 'location' }),
          msg({ ts: at(4), from: 'app-1', to: 'car-1', type: 'command' }),
          msg({ ts: at(5), from: 'car-1', to: 'app-1', type: 'reply', tags: ['fleet-a'] }),
          msg({ ts: at(6), from: 'car-3', type: 'telemetry' }),
        ];
        await store.append(fixture);
      });
      const pick = (...indexes: number[]) => indexes.map((i) => fixture[i]!.id);

      it('filters by from, to, type and tags', async () => {
        assert.deepEqual(ids(await all(store, { order: 'asc', from: ['car-1'] }, 100)), pick(0, 2, 4));
        assert.deepEqual(ids(await all(store, { order: 'asc', from: ['car-2', 'car-3'] }, 100)), pick(1, 5));
        assert.deepEqual(ids(await all(store, { order: 'asc', to: ['car-1'] }, 100)), pick(3));
        assert.deepEqual(ids(await all(store, { order: 'asc', type: ['location'] }, 100)), pick(1, 2));
        assert.deepEqual(ids(await all(store, { order: 'asc', tags: ['eu'] }, 100)), pick(0, 1));
        assert.deepEqual(ids(await all(store, { order: 'asc', tags: ['eu', 'fleet-a'] }, 100)), pick(1));
        assert.deepEqual(ids(await all(store, { order: 'asc', from: ['car-1'], type: ['location', 'reply'] }, 100)), pick(2, 4));
        assert.deepEqual(ids(await all(store, { order: 'asc', from: ['nobody'] }, 100)), []);
      });

      it('filters by time: since inclusive, until exclusive', async () => {
        assert.deepEqual(ids(await all(store, { order: 'asc', since: at(2), until: at(5) }, 100)), pick(1, 2, 3));
        assert.deepEqual(ids(await all(store, { order: 'asc', since: at(6) }, 100)), pick(5));
        assert.deepEqual(ids(await all(store, { order: 'asc', until: at(1) }, 100)), []);
      });

      it('applies the visibility scope: from in scope.from or to in scope.to', async () => {
        const seen = await all(store, { order: 'asc', scope: { from: ['car-2'], to: ['car-1'] } }, 100);
        assert.deepEqual(ids(seen), pick(1, 3));
      });

      it('orders by ts then id, ascending and descending, and pages through everything once', async () => {
        const sameTime = [msg({ ts: at(7), id: 'b-same' }), msg({ ts: at(7), id: 'a-same' }), msg({ ts: at(7), id: 'c-same' })];
        await store.append(sameTime);
        const expected = [...pick(0, 1, 2, 3, 4, 5), 'a-same', 'b-same', 'c-same'];
        for (const limit of [1, 2, 4, 100]) {
          assert.deepEqual(ids(await all(store, { order: 'asc' }, limit)), expected, `asc, limit ${limit}`);
          assert.deepEqual(ids(await all(store, { order: 'desc' }, limit)), [...expected].reverse(), `desc, limit ${limit}`);
        }
      });

      it('pages exactly through messages that share ts and id (different senders)', async () => {
        const twins = ['car-b', 'car-a', 'car-c'].map((from) => msg({ ts: at(8), id: 'twin', from }));
        await store.append(twins);
        for (const order of ['asc', 'desc'] as const) {
          const walked = (await all(store, { order, since: at(8) }, 1)).map((m) => m.from);
          assert.deepEqual(walked, order === 'asc' ? ['car-a', 'car-b', 'car-c'] : ['car-c', 'car-b', 'car-a']);
        }
      });

      it('returns next only while more messages match', async () => {
        const full = await store.query({ order: 'asc', limit: 6 });
        assert.equal(full.items.length, 6);
        assert.equal(full.next, null);
        const partial = await store.query({ order: 'asc', limit: 5 });
        assert.notEqual(partial.next, null);
      });

      it('keeps paging correct while messages are appended', async () => {
        const first = await store.query({ order: 'asc', limit: 3 });
        const late = [msg({ ts: at(30) }), msg({ ts: at(31) })];
        await store.append(late);
        const rest = await all(store, { order: 'asc' }, 3).then((everything) => everything.slice(3));
        const second = [...first.items];
        let cursor = first.next;
        while (cursor) {
          const page = await store.query({ order: 'asc', limit: 3, cursor });
          second.push(...page.items);
          cursor = page.next;
        }
        assert.deepEqual(ids(second), [...pick(0, 1, 2, 3, 4, 5), ...ids(late)]);
        assert.deepEqual(ids(second.slice(3)), ids(rest));
      });

      it('refuses a cursor it did not issue with NITROGEN_ERR_VALIDATION', async () => {
        for (const cursor of ['garbage', Buffer.from('[1,2]').toString('base64url')]) {
          await assert.rejects(store.query({ order: 'asc', limit: 1, cursor }), (err) => isNitrogenError(err, 'NITROGEN_ERR_VALIDATION'));
        }
      });
    });

    it('purges expired messages and, with olderThan, old ones', async () => {
      const now = new Date(Date.UTC(2026, 0, 1, 1));
      const keep = msg({ ts: at(50), expires: new Date(now.getTime() + 60_000).toISOString() });
      const expired = msg({ ts: at(50), expires: at(10) });
      const old = msg({ ts: at(1) });
      const fresh = msg({ ts: at(55) });
      await store.append([keep, expired, old, fresh]);
      assert.equal(await store.purgeExpired(now), 1);
      assert.equal(await store.get(expired.id), null);
      assert.equal(await store.purgeExpired(now, new Date(at(30))), 1);
      assert.equal(await store.get(old.id), null);
      assert.deepEqual(ids(await all(store, { order: 'asc' }, 10)), [keep.id, fresh.id]);
    });

    it('keeps expired messages a feed consumer has not passed', async () => {
      const now = new Date(Date.UTC(2026, 0, 1, 1));
      const read = msg({ ts: at(1), expires: at(2) });
      const unread = msg({ ts: at(1), expires: at(2) });
      await store.append([read]);
      await store.append([unread]);
      const position = (await store.readFeed(null, 1)).position;
      assert.equal(await store.purgeExpired(now, undefined, [null]), 0, 'a consumer at the start keeps everything');
      assert.equal(await store.purgeExpired(now, undefined, [position, null]), 0, 'the earliest consumer decides');
      assert.equal(await store.purgeExpired(now, undefined, [position]), 1);
      assert.equal(await store.get(read.id), null);
      assert.notEqual(await store.get(unread.id), null);
    });

    it('feeds messages in commit order from a position, without duplicates', async () => {
      const a = [msg({ ts: at(9) }), msg({ ts: at(1) })];
      const b = [msg({ ts: at(5) }), a[0]!, msg({ ts: at(2) })];
      await store.append(a);
      await store.append(b);
      const feed: Message[] = [];
      let position: string | null = null;
      for (let i = 0; i < 10; i++) {
        const batch = await store.readFeed(position, 2);
        assert.ok(batch.messages.length <= 2);
        if (batch.messages.length === 0) {
          assert.equal(batch.position, position, 'an empty read keeps the position');
          break;
        }
        feed.push(...batch.messages);
        position = batch.position;
      }
      assert.deepEqual(ids(feed), [a[0]!.id, a[1]!.id, b[0]!.id, b[2]!.id]);
      const later = msg({ ts: at(0) });
      await store.append([later]);
      assert.deepEqual(ids((await store.readFeed(position, 10)).messages), [later.id]);
    });

    it('reports how far a feed position lags, when the store supports it', async function () {
      if (!store.feedLag) this.skip();
      assert.deepEqual(await store.feedLag(null), { count: 0, oldestTs: null });
      const before = Date.now();
      await store.append([msg({ ts: at(1) }), msg({ ts: at(2) }), msg({ ts: at(3) })]);
      const all = await store.feedLag(null);
      assert.equal(all.count, 3);
      assert.ok(Date.parse(all.oldestTs!) >= before - 1000 && Date.parse(all.oldestTs!) <= Date.now(), 'oldestTs is the commit time');
      const first = await store.readFeed(null, 2);
      assert.equal((await store.feedLag(first.position)).count, 1);
    });

    it('stores feed checkpoints per consumer', async () => {
      assert.equal(await store.getCheckpoint('sink:a'), null);
      await store.append([msg({ ts: at(1) }), msg({ ts: at(2) })]);
      const first = await store.readFeed(null, 1);
      await store.setCheckpoint('sink:a', first.position!);
      assert.equal(await store.getCheckpoint('sink:a'), first.position);
      assert.equal(await store.getCheckpoint('sink:b'), null);
      const rest = await store.readFeed(await store.getCheckpoint('sink:a'), 10);
      assert.equal(rest.messages.length, 1);
      await store.setCheckpoint('sink:a', rest.position!);
      assert.equal(await store.getCheckpoint('sink:a'), rest.position);
    });

    if (harness.reopen) {
      it('keeps messages and checkpoints across a reopen', async () => {
        const m = msg({ ts: at(1), tags: ['t'] });
        await store.append([m]);
        const feed = await store.readFeed(null, 10);
        await store.setCheckpoint('sink:x', feed.position!);
        store = await harness.reopen!(store);
        assert.deepEqual(await store.get(m.id), m);
        assert.deepEqual(ids(await all(store, { order: 'asc', tags: ['t'] }, 10)), [m.id]);
        assert.equal(await store.getCheckpoint('sink:x'), feed.position);
        const n = msg({ ts: at(2) });
        await store.append([n]);
        assert.deepEqual(ids((await store.readFeed(feed.position, 10)).messages), [n.id]);
      });
    }
  });
}
