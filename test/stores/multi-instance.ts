import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Message } from '../../core/message.js';
import type { Store } from '../../core/ports/store.js';

/**
 * What a shared store must keep when several instances use it at once: the single-writer
 * conformance suite cannot see these. `open` returns two started stores on the same data.
 */
export interface SharedStoreHarness {
  open(): Promise<[Store, Store]>;
  close(stores: [Store, Store]): Promise<void>;
  /** The numbers of the feed records as stored, read around the adapter. */
  recordNumbers(): Promise<number[]>;
}

let n = 0;
export function sharedMsg(fields: Partial<Message> = {}): Message {
  n++;
  return { id: `sh-${n}-${randomBytes(3).toString('hex')}`, type: 'telemetry', from: 'car-1', ts: new Date(Date.UTC(2026, 0, 1, 0, 0, n % 3600)).toISOString(), body: { n }, ...fields };
}

export async function drainFeed(store: Store, position: string | null = null): Promise<{ ids: string[]; position: string | null }> {
  const ids: string[] = [];
  for (;;) {
    const batch = await store.readFeed(position, 100);
    if (batch.messages.length === 0) return { ids, position };
    ids.push(...batch.messages.map((m) => m.id));
    position = batch.position;
  }
}

export function sharedStoreSuite(label: string, harness: SharedStoreHarness): void {
  describe(`Store shared by two instances: ${label}`, function () {
    this.timeout(30_000);
    let stores: [Store, Store];
    beforeEach(async () => {
      stores = await harness.open();
    });
    afterEach(async () => {
      await harness.close(stores);
    });

    it('feeds every acknowledged message once while both append at once and a reader polls', async () => {
      const acked: string[] = [];
      const fed: string[] = [];
      let position: string | null = null;
      let writing = true;
      const reader = (async () => {
        // Reads while the writers commit: a position past a commit still in flight would lose it.
        while (writing) {
          const batch = await stores[1].readFeed(position, 50);
          fed.push(...batch.messages.map((m) => m.id));
          position = batch.position;
        }
      })();
      const writer = async (store: Store, from: string) => {
        for (let round = 0; round < 6; round++) {
          const batches = Array.from({ length: 4 }, () => Array.from({ length: 10 }, () => sharedMsg({ from })));
          await Promise.all(
            batches.map(async (batch) => {
              await store.append(batch);
              acked.push(...batch.map((m) => m.id));
            }),
          );
        }
      };
      await Promise.all([writer(stores[0], 'car-a'), writer(stores[1], 'car-b')]);
      writing = false;
      await reader;
      fed.push(...(await drainFeed(stores[1], position)).ids);
      assert.equal(acked.length, 480);
      assert.deepEqual(new Set(fed), new Set(acked), 'the feed holds every acknowledged message');
      assert.equal(fed.length, acked.length, 'and each once');
      // Why no reader can skip a commit: the records are numbered without a hole.
      const numbers = (await harness.recordNumbers()).sort((a, b) => a - b);
      assert.deepEqual(
        numbers,
        numbers.map((_, i) => i + 1),
      );
    });

    it('still feeds a message after an instance that knows no sink position purged it', async () => {
      // Each instance purges knowing only its own sinks: the feed must not depend on message rows.
      const big = sharedMsg({ from: 'car-big', expires: '2026-01-01T00:00:00.000Z', body: 'x'.repeat(200 * 1024) });
      await stores[0].append([big]);
      assert.equal(await stores[1].purgeExpired(new Date(Date.UTC(2026, 0, 2)), undefined, []), 1);
      assert.equal(await stores[0].get(big.id), null);
      assert.deepEqual((await stores[0].readFeed(null, 10)).messages, [big]);
    });

    it('sees on one instance what the other appended, and does not feed a repeated message again', async () => {
      const m = sharedMsg({ from: 'car-x' });
      await stores[0].append([m]);
      assert.deepEqual((await stores[1].query({ from: ['car-x'], order: 'desc', limit: 10 })).items, [m]);
      const other = sharedMsg({ from: 'car-x' });
      await stores[1].append([{ ...m, body: 'retry' }, other]);
      assert.deepEqual(await stores[1].get(m.id), m);
      const { ids } = await drainFeed(stores[0]);
      assert.deepEqual(ids, [m.id, other.id]);
    });
  });
}
