import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { redisAvailable, startRedis, type RedisServer } from '../bench/lib/redis-server.js';
import { RedisLeases } from '../adapters/redis/redis-leases.js';
import { MemoryStore } from '../adapters/memory/memory-store.js';
import { isNitrogenError } from '../core/errors.js';
import { createLogger } from '../core/logger.js';
import { SinkLeases, partitionOf, preferredMember, unitKey, type SinkUnit, type UnitCheckpoints } from '../core/sink-leases.js';
import { eventually } from './helpers/cluster.js';

const logger = createLogger('silent');

if (redisAvailable()) {
  describe('Sink leases on Redis', function () {
    this.timeout(30_000);
    let redis: RedisServer;
    const clients: Redis[] = [];
    let prefix: string;

    before(async () => {
      redis = await startRedis();
    });
    after(async () => {
      await redis?.stop();
    });
    beforeEach(() => {
      prefix = `l${randomBytes(4).toString('hex')}:`;
    });
    afterEach(() => {
      for (const client of clients.splice(0)) client.disconnect();
    });

    async function leaseStore(): Promise<{ store: RedisLeases; client: Redis }> {
      const client = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null });
      clients.push(client);
      await client.connect();
      return { store: new RedisLeases(client, prefix), client };
    }

    it('gives a free unit one owner at a time, with an epoch that grows at each new owner', async () => {
      const { store } = await leaseStore();
      const a = await store.acquire('s/0', 'a', 200);
      assert.ok(a);
      assert.equal(await store.acquire('s/0', 'b', 200), null, 'held by a');
      assert.deepEqual(await store.acquire('s/0', 'a', 200), a, 'its owner extends it with the same epoch');
      assert.equal(await store.renew(a, 200), true);
      await store.release(a);
      const b = await store.acquire('s/0', 'b', 100);
      assert.ok(b && b.epoch > a.epoch);
      assert.equal(await store.renew(a, 200), false, 'a released it');
      // b's lease runs out without renewal: a takes it with a later epoch still.
      const again = await eventually(async () => (await store.acquire('s/0', 'a', 200)) ?? undefined, 'the lease to expire', 5000);
      assert.ok(again.epoch > b.epoch);
      await store.release(b);
      assert.equal(await store.renew(again, 200), true, "a stale owner's release leaves the lease alone");
    });

    it('writes a checkpoint only under the lease that holds the unit, checked in the same step', async () => {
      const { store, client } = await leaseStore();
      const old = (await store.acquire('s/1', 'a', 100))!;
      assert.equal(await store.setCheckpoint(old, '10'), true);
      // a pauses past its ttl; b takes the unit over and moves on.
      const taken = await eventually(async () => (await store.acquire('s/1', 'b', 5000)) ?? undefined, 'the takeover', 5000);
      assert.equal(await store.setCheckpoint(taken, '20'), true);
      assert.equal(await store.setCheckpoint(old, '15'), false, 'the stale owner is fenced off');
      assert.equal(await store.getCheckpoint('s/1'), '20');
      // Expired and not yet taken: nobody holds it, so nobody writes.
      const lapsed = (await store.acquire('s/2', 'a', 50))!;
      await eventually(async () => ((await client.pttl(`${prefix}lease:s/2`)) === -2 ? true : undefined), 'the lapse');
      assert.equal(await store.setCheckpoint(lapsed, '1'), false);
      assert.equal(await store.getCheckpoint('s/2'), null);
    });

    it('keeps members alive while they beat, and drops one that stops or leaves', async () => {
      const { store } = await leaseStore();
      await store.heartbeat('hub', 'b', 150);
      assert.deepEqual(await store.heartbeat('hub', 'a', 5000), ['a', 'b']);
      await store.heartbeat('hub', 'c', 5000);
      assert.deepEqual(await store.heartbeat('archive', 'c', 5000), ['c'], 'members of another sink apart');
      await store.leave('hub', 'c');
      await eventually(async () => ((await store.heartbeat('hub', 'a', 5000)).join() === 'a' ? true : undefined), 'b to drop out');
    });

    it("spreads partitions over the live instances, hands them over as members come, and moves a dead one's within 4/3 of the ttl", async () => {
      const ttlMs = 600;
      const units: SinkUnit[] = Array.from({ length: 12 }, (_, partition) => ({ sink: 'hub', partition, partitions: 12 }));
      /** Who runs each unit now, by instance: overlapping runs would show as two names. */
      const running = new Map<string, Set<string>>();
      const positions = new Map<string, UnitCheckpoints>();
      const make = async (member: string) => {
        const { store, client } = await leaseStore();
        const manager = new SinkLeases(
          store,
          new MemoryStore(),
          units,
          async (unit, checkpoints) => {
            const key = unitKey(unit);
            const set = running.get(key) ?? new Set<string>();
            set.add(member);
            running.set(key, set);
            positions.set(`${member}:${key}`, checkpoints);
            return { stop: async () => void set.delete(member) };
          },
          { member, owner: `${member}/run`, ttlMs },
          logger,
        );
        return { manager, client };
      };
      const owners = () => new Map(units.map((u) => [unitKey(u), [...(running.get(unitKey(u)) ?? [])].join('+')]));
      const a = await make('a');
      await a.manager.start();
      assert.ok(
        [...owners().values()].every((o) => o === 'a'),
        'alone, a feeds every partition',
      );
      const b = await make('b');
      const c = await make('c');
      await Promise.all([b.manager.start(), c.manager.start()]);
      const spread = await eventually(
        async () => {
          const now = owners();
          return [...now.entries()].every(([key, o]) => o === preferredMember(key, ['a', 'b', 'c'])) ? now : undefined;
        },
        'the partitions to reach the instances they belong to',
        10_000,
      );
      assert.ok(new Set(spread.values()).size === 3, `every instance feeds some: ${JSON.stringify([...spread])}`);

      // c loses Redis (as a dead or cut-off instance does): it stops its units once it cannot confirm
      // them, and a and b take them over once its membership and leases expire.
      const lost = units.map(unitKey).filter((key) => spread.get(key) === 'c');
      const cut = Date.now();
      c.client.disconnect();
      await eventually(async () => (lost.every((key) => ['a', 'b'].includes(owners().get(key)!)) ? true : undefined), "c's partitions to move", 10_000);
      const took = Date.now() - cut;
      assert.ok(took <= ttlMs + ttlMs / 3 + 1000, `moved in ${took} ms`);
      for (const [key, o] of owners()) assert.ok(o === 'a' || o === 'b', `${key} fed by one live instance, not ${o}`);

      // a fed every unit before handing most over: its old handles cannot move their checkpoints.
      const handedOver = units.map(unitKey).find((key) => owners().get(key) === 'b')!;
      await assert.rejects(positions.get(`a:${handedOver}`)!.set('999'), (err: unknown) => isNitrogenError(err, 'NITROGEN_ERR_CONFLICT'));
      await assert.rejects(positions.get(`c:${lost[0]}`)!.set('999'));
      assert.notEqual(await positions.get(`b:${handedOver}`)!.get(), '999');

      await a.manager.stop();
      await eventually(async () => ([...owners().values()].every((o) => o === 'b') ? true : undefined), 'b to take what a released', 10_000);
      await b.manager.stop();
      assert.ok(
        [...owners().values()].every((o) => o === ''),
        'stopped: nothing runs',
      );
      await c.manager.stop();
    });

    it('partitions by sender, the same way on every instance', () => {
      assert.equal(partitionOf('car-1', 1), 0);
      const counts = new Array(8).fill(0);
      for (let i = 0; i < 8000; i++) counts[partitionOf(`car-${i}`, 8)]++;
      assert.ok(
        counts.every((n) => n > 800 && n < 1200),
        `spread: ${counts.join(' ')}`,
      );
      assert.equal(partitionOf('car-42', 8), partitionOf('car-42', 8));
    });
  });
}
