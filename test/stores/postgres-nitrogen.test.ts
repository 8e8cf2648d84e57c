import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { defaultCatalog } from '../../catalog.js';
import { PostgresStore } from '../../adapters/postgres/index.js';
import { PostgresStoreOptions } from '../../adapters/postgres/postgres-store.js';
import type { NitrogenConfigInput } from '../../core/config.js';
import type { Message } from '../../core/message.js';
import { definePlugin } from '../../core/plugin.js';
import { startServer, type ApiResponse, type TestServer } from '../helpers/server.js';
import { drainFeed } from './multi-instance.js';
import { postgresAvailable, sharedPostgres, startPostgres, type PostgresServer } from '../../bench/lib/postgres-server.js';

/** Records what it is sent: the downstream end of the feed in these tests. */
const delivered: Message[] = [];
const recordingSink = definePlugin({ name: 'recording', kind: 'sink', create: ({ name }) => ({ name, send: async (batch: Message[]) => void delivered.push(...batch) }) });
const catalog = { ...defaultCatalog, sink: { recording: async () => recordingSink } };

async function pageAll(server: TestServer, query: string, token?: string): Promise<Message[]> {
  const out: Message[] = [];
  let cursor: string | null = null;
  do {
    const res: ApiResponse = await server.api('GET', `/messages?${query}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, { token });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    out.push(...res.body.messages);
    cursor = res.body.next;
  } while (cursor);
  return out;
}

if (postgresAvailable()) {
  describe('Nitrogen servers on PostgreSQL', function () {
    this.timeout(60_000);
    const servers: TestServer[] = [];
    afterEach(async () => {
      for (const server of servers.splice(0)) await server.stop();
    });

    /** Every instance shares the schema and the token key, and keeps nothing of its own on disk. */
    function config(pg: PostgresServer, schema: string): NitrogenConfigInput {
      const options = { url: pg.url(), schema };
      return {
        store: { use: 'postgres', options },
        registry: { use: 'postgres', options },
        identity: { use: 'default', options: { tokenSecret: 'shared-token-secret-of-the-test-deployment' } },
      };
    }

    async function start(pg: PostgresServer, schema: string, extra: NitrogenConfigInput = {}): Promise<TestServer> {
      const server = await startServer({ ...config(pg, schema), ...extra }, undefined, catalog);
      servers.push(server);
      return server;
    }

    it('serves one fleet from two instances: MQTT into one, queries, tokens and a sink on the other', async () => {
      const pg = await sharedPostgres();
      const schema = 'e_' + randomBytes(5).toString('hex');
      delivered.length = 0;
      const withSink = await start(pg, schema, { sinks: [{ use: 'recording', name: 'downstream', delivery: { batchSize: 50, lingerMs: 5, retryMinMs: 20, retryMaxMs: 100, pollMs: 50 } }] });
      const other = await start(pg, schema);
      const devices = await other.register([
        { type: 'device', id: 'car-pg-1' },
        { type: 'device', id: 'car-pg-2' },
      ]);
      const sent: string[] = [];
      await Promise.all(
        devices.map(async (device) => {
          const client = await other.mqtt(device.id, device.secret);
          for (let i = 0; i < 25; i++) {
            const id = `${device.id}-m${String(i).padStart(2, '0')}`;
            const ts = new Date(Date.UTC(2026, 5, 1, 12, 0, i)).toISOString();
            await client.publishAsync(`devices/${device.id}/messages`, JSON.stringify({ id, ts, type: i % 2 ? 'telemetry' : 'location', body: { i }, tags: i % 5 ? undefined : ['gps'] }), { qos: 1 });
            sent.push(id);
          }
          await client.endAsync();
        }),
      );

      // What one instance acknowledged, the other serves, in order, page after page.
      const mine = sent.filter((id) => id.startsWith('car-pg-1-'));
      assert.deepEqual(
        (await pageAll(withSink, 'from=car-pg-1&limit=7')).map((m) => m.id),
        mine,
      );
      assert.deepEqual(
        (await pageAll(withSink, 'from=car-pg-1&order=desc&limit=4')).map((m) => m.id),
        [...mine].reverse(),
      );
      assert.equal((await pageAll(withSink, 'type=location&tag=gps&limit=2')).length, 6);
      const token = await withSink.token(devices[1]!.id, devices[1]!.secret);
      assert.deepEqual(
        (await pageAll(other, 'limit=9', token)).map((m) => m.id),
        sent.filter((id) => id.startsWith('car-pg-2-')),
        'a token from one instance works on the other, and a device sees its own',
      );

      // The sink on the first instance receives what the second stored, each message once.
      for (const end = Date.now() + 20_000; delivered.length < sent.length && Date.now() < end;) await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(new Set(delivered.map((m) => m.id)), new Set(sent));
      assert.equal(delivered.length, sent.length, 'each once');
    });

    it('keeps every acknowledged message when PostgreSQL crashes right after the acknowledgements', async () => {
      const pg = await startPostgres();
      try {
        const schema = 'crash';
        const server = await start(pg, schema);
        const [car] = await server.register([{ type: 'device' }]);
        const client = await server.mqtt(car!.id, car!.secret);
        const acknowledged: string[] = [];
        await Promise.all(
          Array.from({ length: 200 }, async (_, i) => {
            const id = `crash-${i}`;
            await client.publishAsync(`devices/${car!.id}/messages`, JSON.stringify({ id, type: 'telemetry', body: { i } }), { qos: 1 });
            acknowledged.push(id);
          }),
        );
        await client.endAsync();
        // No checkpoint, no clean shutdown: after the restart, only what the WAL held exists.
        await pg.crashAndRestart();
        const store = new PostgresStore(PostgresStoreOptions.parse({ url: pg.url(), schema }));
        await store.start();
        try {
          const fed = (await drainFeed(store)).ids;
          assert.deepEqual(new Set(fed), new Set(acknowledged));
          assert.equal(fed.length, 200);
          for (const id of [acknowledged[0]!, acknowledged[199]!]) assert.notEqual(await store.get(id, car!.id), null);
        } finally {
          await store.stop();
        }
      } finally {
        for (const server of servers.splice(0)) await server.stop().catch(() => {});
        await pg.stop();
      }
    });
  });
}
