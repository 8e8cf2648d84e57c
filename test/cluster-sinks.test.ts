import assert from 'node:assert/strict';
import { postgresAvailable, sharedPostgres, type PostgresServer } from '../bench/lib/postgres-server.js';
import { redisAvailable, startRedis, type RedisServer } from '../bench/lib/redis-server.js';
import { TestCluster, eventually } from './helpers/cluster.js';
import type { TestServer } from './helpers/server.js';
import { RheaBroker } from './sinks-amqp/rhea-broker.js';

const PARTITIONS = 4;

if (postgresAvailable() && redisAvailable()) {
  describe('A sink shared by instances (partitions leased through Redis)', function () {
    this.timeout(60_000);
    let pg: PostgresServer;
    let redis: RedisServer;
    let broker: RheaBroker;
    let cluster: TestCluster;

    before(async () => {
      [pg, redis, broker] = await Promise.all([sharedPostgres(), startRedis(), RheaBroker.start()]);
      cluster = new TestCluster(pg, redis);
    });
    after(async () => {
      await cluster?.stop();
      await broker?.stop();
      await redis?.stop();
    });

    const withSink = {
      sinks: [{ use: 'amqp', name: 'hub', options: { url: '', address: 'shared' }, delivery: { partitions: PARTITIONS, batchSize: 50, lingerMs: 5, pollMs: 50, retryMinMs: 20, retryMaxMs: 200 } }],
      cluster: { sinkLeaseTtl: '600ms' },
    };
    const start = (id: string) => cluster.start(id, { ...withSink, sinks: withSink.sinks.map((s) => ({ ...s, options: { ...s.options, url: broker.url } })) });
    const fed = async (server: TestServer) => ((await server.api('GET', '/sinks')).body.sinks as unknown[]).length;
    /** Deliveries at the peer by `from:seq`. */
    const delivered = () => {
      const counts = new Map<string, number>();
      for (const m of broker.received.get('shared') ?? []) {
        const e = JSON.parse(Buffer.from((m.body as { content: Buffer }).content).toString('utf8'));
        const key = `${e.from}:${e.body.seq}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
      return counts;
    };

    it("feeds each partition from one instance, and moves a stopped instance's partitions to the others without losing a message", async () => {
      const a = await start('sink-a');
      const b = await start('sink-b');
      await eventually(async () => ((await fed(a)) + (await fed(b)) === PARTITIONS && (await fed(a)) > 0 && (await fed(b)) > 0 ? true : undefined), 'the partitions spread over both');

      const indexes = async (server: TestServer) => ((await server.api('GET', '/sinks')).body.sinks as Array<{ partition: { index: number; of: number } }>).map((x) => x.partition);
      const all = [...(await indexes(a)), ...(await indexes(b))];
      assert.deepEqual(all.map((p) => p.index).sort(), [0, 1, 2, 3], 'each partition on exactly one instance');
      assert.ok(all.every((p) => p.of === PARTITIONS));

      const devices = await a.register(Array.from({ length: 8 }, (_, i) => ({ type: 'device' as const, id: `shared-${i}` })));
      const expected: string[] = [];
      const publish = async (from: number, to: number, through: TestServer[]) => {
        await Promise.all(
          devices.map(async (d, i) => {
            const server = through[i % through.length]!;
            const token = await server.token(d.id, d.secret);
            for (let seq = from; seq < to; seq++) {
              const res = await server.api('POST', '/messages', { token, body: { type: 'telemetry', body: { seq } } });
              assert.equal(res.status, 201);
              expected.push(`${d.id}:${seq}`);
            }
          }),
        );
      };
      await publish(0, 10, [a, b]);
      await eventually(async () => (expected.every((k) => delivered().has(k)) ? true : undefined), 'every message at the peer');
      assert.ok(
        [...delivered().values()].every((n) => n === 1),
        'each partition fed once: no message sent by both instances',
      );

      // A graceful stop releases b's leases at once: a takes them at its next beat.
      await b.stop();
      cluster.servers.splice(cluster.servers.indexOf(b), 1);
      await eventually(async () => ((await fed(a)) === PARTITIONS ? true : undefined), 'a to feed every partition', 5000);
      await publish(10, 20, [a]);
      await eventually(async () => (expected.every((k) => delivered().has(k)) ? true : undefined), 'every message at the peer after the hand-over');
      const duplicates = [...delivered().values()].reduce((sum, n) => sum + n - 1, 0);
      assert.ok(duplicates <= PARTITIONS * 2 * 50, `${duplicates} duplicates`);
    });
  });
}
