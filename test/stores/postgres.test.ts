import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import pg from 'pg';
import { PostgresRegistry, PostgresStore } from '../../adapters/postgres/index.js';
import { PostgresConnectionOptions } from '../../adapters/postgres/connection.js';
import { PostgresStoreOptions, statementChunks } from '../../adapters/postgres/postgres-store.js';
import { STATEMENT_CHARS } from '../../adapters/postgres/feed.js';
import { encodeMessage } from '../../core/message.js';
import { isNitrogenError } from '../../core/errors.js';
import type { Store } from '../../core/ports/store.js';
import { registryConformance } from '../conformance/registry.js';
import { storeConformance } from '../conformance/store.js';
import { drainFeed, sharedMsg, sharedStoreSuite } from './multi-instance.js';
import { postgresAvailable, sharedPostgres, type PostgresServer } from '../../bench/lib/postgres-server.js';

if (postgresAvailable()) {
  describe('PostgreSQL adapters on a throwaway server', () => {
    let server: PostgresServer;
    let admin: pg.Pool;
    before(async function () {
      this.timeout(60_000);
      server = await sharedPostgres();
      admin = new pg.Pool({ connectionString: server.url(), max: 4 });
    });
    after(() => admin?.end());

    // Each store or registry gets a schema of its own; reopening keeps it, closing drops it.
    const newSchema = () => 't_' + randomBytes(5).toString('hex');
    const storeOptions = (schema: string, extra: Record<string, unknown> = {}) => PostgresStoreOptions.parse({ url: server.url(), schema, ...extra });
    const schemas = new Map<object, string>();
    function harness<T extends PostgresStore | PostgresRegistry>(make: (schema: string) => T) {
      const open = async (schema = newSchema()) => {
        const instance = make(schema);
        await instance.start();
        schemas.set(instance, schema);
        return instance;
      };
      return {
        open: () => open(),
        reopen: async (old: T) => {
          await old.stop();
          return open(schemas.get(old));
        },
        close: async (instance: T) => {
          await instance.stop();
          await admin.query(`DROP SCHEMA IF EXISTS ${schemas.get(instance)} CASCADE`);
        },
      };
    }

    storeConformance(
      'postgres',
      harness((schema) => new PostgresStore(storeOptions(schema))),
    );
    registryConformance(
      'postgres',
      harness((schema) => new PostgresRegistry(PostgresConnectionOptions.parse({ url: server.url(), schema }))),
    );

    let shared = '';
    sharedStoreSuite('postgres', {
      open: async () => {
        shared = newSchema();
        const pair: [Store, Store] = [new PostgresStore(storeOptions(shared)), new PostgresStore(storeOptions(shared))];
        for (const s of pair) await s.start!();
        return pair;
      },
      close: async (pair) => {
        for (const s of pair) await s.stop!();
        await admin.query(`DROP SCHEMA IF EXISTS ${shared} CASCADE`);
      },
      recordNumbers: async () => (await admin.query<{ seq: string }>(`SELECT seq FROM ${shared}.feed`)).rows.map((r) => Number(r.seq)),
    });

    describe('PostgreSQL store', function () {
      this.timeout(30_000);
      let schema: string;
      let store: PostgresStore;
      beforeEach(async () => {
        schema = newSchema();
        store = new PostgresStore(storeOptions(schema));
        await store.start();
      });
      afterEach(async () => {
        await store.stop();
        await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      });

      /** Resolves once `count` backends of this server wait for a lock. */
      async function lockWaiters(count: number): Promise<void> {
        for (;;) {
          const { rows } = await admin.query<{ n: string }>(`SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND application_name = 'nitrogen'`);
          if (Number(rows[0]!.n) >= count) return;
          await new Promise((resolve) => setImmediate(resolve));
        }
      }

      it('numbers feed records in commit order: an append that reached the feed later waits for the one before to commit', async () => {
        // A transaction holding the head row stands for an append between its feed statement and its commit.
        const holder = await admin.connect();
        try {
          await holder.query('BEGIN');
          await holder.query(`UPDATE ${schema}.feed_head SET seq = seq + 1`);
          const m = sharedMsg({ from: 'car-late' });
          let done = false;
          const appending = store.append([m]).then(() => (done = true));
          await lockWaiters(1);
          // Its message row is inserted, not committed: no reader sees it, in the table or the feed.
          assert.equal(done, false);
          assert.deepEqual((await store.readFeed(null, 10)).messages, []);
          assert.equal(await store.get(m.id), null);
          await holder.query(`INSERT INTO ${schema}.feed (seq, at, batch, n, items) VALUES (1, now(), pg_current_xact_id(), 0, '[]')`);
          await holder.query('COMMIT');
          await appending;
          const { rows } = await admin.query<{ seq: string; n: number }>(`SELECT seq, n FROM ${schema}.feed ORDER BY seq`);
          assert.deepEqual(
            rows.map((r) => [Number(r.seq), r.n]),
            [
              [1, 0],
              [2, 1],
            ],
            'the append took the number after the one committed before it',
          );
          assert.deepEqual((await store.readFeed(null, 10)).messages, [m]);
        } finally {
          holder.release();
        }
      });

      it('retries an append that a deadlock rolled back, storing and feeding each message once', async () => {
        const other = new PostgresStore(storeOptions(schema));
        await other.start();
        const blocker = await admin.connect();
        try {
          const [a, b, x1, x2] = ['a', 'b', 'x1', 'x2'].map((id) => sharedMsg({ id: `dl-${id}`, from: 'car-dl' }));
          // Uncommitted rows for x1 and x2 stop each append after its first insert: one holds a, the other b.
          await blocker.query('BEGIN');
          await blocker.query(`INSERT INTO ${schema}.messages (id, sender, ts, type, envelope) VALUES ($1, 'car-dl', now(), 't', '{}'), ($2, 'car-dl', now(), 't', '{}')`, [x1!.id, x2!.id]);
          const first = store.append([a!, x1!, b!]);
          const second = other.append([b!, x2!, a!]);
          await lockWaiters(2);
          // Then each needs the row the other holds: PostgreSQL aborts one, which runs again.
          await blocker.query('ROLLBACK');
          await Promise.all([first, second]);
          const fed = (await drainFeed(store)).ids;
          assert.deepEqual([...fed].sort(), [a!.id, b!.id, x1!.id, x2!.id].sort());
          for (const m of [a, b, x1, x2]) assert.deepEqual(await store.get(m!.id, 'car-dl'), m);
        } finally {
          blocker.release();
          await other.stop();
        }
      });

      it('appends a batch larger than one statement may carry in one transaction, numbered without a gap', async () => {
        // 100 envelopes of 200 KiB: 20 MiB, cut into statements of at most 16 MiB each for rows and records.
        const batch = Array.from({ length: 100 }, (_, i) => sharedMsg({ from: 'car-big', body: { i, blob: 'x'.repeat(200 * 1024) } }));
        const chunks = statementChunks(batch);
        assert.ok(chunks.length >= 2 && chunks.every((c) => c.reduce((n, m) => n + encodeMessage(m).length, 0) <= STATEMENT_CHARS));
        assert.deepEqual(chunks.flat(), batch);
        await store.append(batch);
        assert.deepEqual(
          (await drainFeed(store)).ids,
          batch.map((m) => m.id),
        );
        const numbers = (await admin.query<{ seq: string }>(`SELECT seq FROM ${schema}.feed ORDER BY seq`)).rows.map((r) => Number(r.seq));
        assert.deepEqual(
          numbers,
          numbers.map((_, i) => i + 1),
        );
        assert.ok(numbers.length >= 100, 'a record of its own for each envelope too large to share one');
        assert.deepEqual(await store.get(batch[99]!.id), batch[99]);
      });

      it('stores and finds tags PostgreSQL text cannot hold as they are', async () => {
        const odd = sharedMsg({ from: 'car-odd', tags: ['nul\u0000tag', 'quote"back\\slash', '\u0001', 'plain'] });
        const plain = sharedMsg({ from: 'car-odd', tags: ['nul\\u0000tag'] });
        await store.append([odd, plain, sharedMsg({ from: 'car-odd' })]);
        assert.deepEqual(await store.get(odd.id), odd);
        for (const tag of odd.tags!) assert.deepEqual((await store.query({ tags: [tag], order: 'asc', limit: 10 })).items, [odd], tag);
        assert.deepEqual((await store.query({ tags: ['nul\\u0000tag'], order: 'asc', limit: 10 })).items, [plain], 'escaping keeps different tags apart');
      });

      it('pages through a visibility scope and long sender lists in order, each message once', async () => {
        const senders = Array.from({ length: 40 }, (_, i) => `car-${String(i).padStart(2, '0')}`);
        const messages = senders.flatMap((from, i) => [sharedMsg({ from }), sharedMsg({ from, to: `app-${i % 3}` })]);
        await store.append(messages);
        const walk = async (query: Parameters<Store['query']>[0]) => {
          const seen: string[] = [];
          let cursor: string | undefined;
          do {
            const page = await store.query({ ...query, cursor });
            seen.push(...page.items.map((m) => m.id));
            cursor = page.next ?? undefined;
          } while (cursor);
          return seen;
        };
        const sorted = (list: typeof messages) => [...list].sort((x, y) => (x.ts < y.ts ? -1 : x.ts > y.ts ? 1 : x.id < y.id ? -1 : 1)).map((m) => m.id);
        for (const order of ['asc', 'desc'] as const) {
          const expectOrder = (ids: string[]) => (order === 'asc' ? ids : ids.reverse());
          // 40 senders: past MAX_BRANCHES, one scan with the list as a filter.
          assert.deepEqual(await walk({ from: senders, order, limit: 7 }), expectOrder(sorted(messages)));
          // A few senders: one scan per sender, merged.
          const few = senders.slice(0, 3);
          assert.deepEqual(await walk({ from: few, order, limit: 2 }), expectOrder(sorted(messages.filter((m) => few.includes(m.from)))));
          // A scope: senders or the recipient, a message matching both listed once.
          const scope = { from: ['car-00', 'car-03'], to: ['app-0'] };
          const visible = messages.filter((m) => scope.from.includes(m.from) || m.to === 'app-0');
          assert.deepEqual(await walk({ scope, order, limit: 3 }), expectOrder(sorted(visible)));
          assert.deepEqual(await walk({ scope, type: ['telemetry'], since: messages[0]!.ts, order, limit: 100 }), expectOrder(sorted(visible.filter((m) => m.ts >= messages[0]!.ts))));
        }
      });

      it('deletes feed records older than the cut only behind every reader', async () => {
        const now = new Date(Date.UTC(2030, 0, 1));
        for (let i = 0; i < 3; i++) await store.append([sharedMsg({ from: 'car-r' })]);
        const first = await store.readFeed(null, 1);
        // Everything is older than a cut in 2030; the reader at record 1 keeps records 2 and 3.
        assert.equal(await store.purgeExpired(now, now, [first.position]), 1);
        const left = (await admin.query<{ seq: string }>(`SELECT seq FROM ${schema}.feed ORDER BY seq`)).rows.map((r) => Number(r.seq));
        assert.deepEqual(left, [2, 3]);
        assert.equal((await store.readFeed(first.position, 10)).messages.length, 2);
      });

      it('survives the server cutting its connections, idle or in the middle of an append', async () => {
        for (let round = 0; round < 3; round++) {
          // Appends in flight when the server ends their sessions fail with NITROGEN_ERR_STORE; the
          // process goes on (an error event on a connection out of the pool would end it).
          const inFlight = Array.from({ length: 4 }, () =>
            store.append([sharedMsg()]).then(
              () => null,
              (err: unknown) => err,
            ),
          );
          await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'nitrogen' AND datname = current_database()`);
          for (const outcome of await Promise.all(inFlight)) assert.ok(outcome === null || isNitrogenError(outcome, 'NITROGEN_ERR_STORE'), String(outcome));
        }
        // The pool drops the dead connections and opens new ones.
        const m = sharedMsg({ from: 'car-after' });
        let stored = false;
        for (let attempt = 0; attempt < 20 && !stored; attempt++) {
          stored = await store.append([m]).then(
            () => true,
            (err) => (assert.ok(isNitrogenError(err, 'NITROGEN_ERR_STORE')), false),
          );
        }
        assert.ok(stored);
        assert.deepEqual(await store.get(m.id), m);
      });

      it('turns a driver failure into NITROGEN_ERR_STORE with the cause, naming the statement timeout', async () => {
        const slow = new PostgresStore(storeOptions(schema, { statementTimeout: '100ms' }));
        await slow.start();
        const holder = await admin.connect();
        try {
          await holder.query('BEGIN');
          await holder.query(`LOCK TABLE ${schema}.feed_head`);
          await assert.rejects(slow.append([sharedMsg()]), (err) => {
            assert.ok(isNitrogenError(err, 'NITROGEN_ERR_STORE'), String(err));
            assert.match(err.message, /PostgreSQL failed to store messages: canceling statement due to statement timeout \(options\.statementTimeout\)/);
            assert.equal((err.cause as { code?: string }).code, '57014');
            return true;
          });
        } finally {
          await holder.query('ROLLBACK');
          holder.release();
          await slow.stop();
        }
      });
    });

    describe('PostgreSQL registry', () => {
      it('refuses text PostgreSQL cannot hold with NITROGEN_ERR_VALIDATION, storing nothing', async () => {
        const { open, close } = harness((schema) => new PostgresRegistry(PostgresConnectionOptions.parse({ url: server.url(), schema })));
        const registry = await open();
        try {
          const record = { id: 'car-1', type: 'device' as const, tags: [], createdAt: '2026-01-01T00:00:00.000Z', enabled: true, name: 'bad\u0000name' };
          await assert.rejects(registry.createPrincipals([record]), (err) => isNitrogenError(err, 'NITROGEN_ERR_VALIDATION') && /name/.test(err.message));
          assert.equal(await registry.getPrincipal('car-1'), null);
          await assert.rejects(registry.putRecords([{ kind: 'twins', key: 'car\u0000', principal: 'car-1', value: {} }]), (err) => isNitrogenError(err, 'NITROGEN_ERR_VALIDATION') && /key/.test(err.message));
          assert.equal(await registry.getRecord('claim-codes', 'ABC\u0000'), null, 'a key it cannot hold is one it does not have');
          await registry.putRecords([{ kind: 'twins', key: 'car-1', principal: 'car-1', value: { text: 'nul \u0000 inside' } }]);
          assert.deepEqual((await registry.getRecord('twins', 'car-1'))!.value, { text: 'nul \u0000 inside' }, 'a value holds any JSON, U+0000 escaped');
        } finally {
          await close(registry);
        }
      });

      it('raises a registry made by layout 1 to layout 2 (records), and refuses one made by a newer layout', async () => {
        const { open, close } = harness((schema) => new PostgresRegistry(PostgresConnectionOptions.parse({ url: server.url(), schema })));
        const registry = await open();
        const schema = schemas.get(registry)!;
        try {
          await registry.stop();
          // What a Nitrogen without records left: layout 1, no records table.
          await admin.query(`DROP TABLE ${schema}.records; UPDATE ${schema}.meta SET value = '1' WHERE key = 'registry.version'`);
          await registry.start();
          await registry.putRecords([{ kind: 'twins', key: 'car-1', principal: 'car-1', value: { v: 1 } }]);
          const version = async () => (await admin.query<{ value: string }>(`SELECT value FROM ${schema}.meta WHERE key = 'registry.version'`)).rows[0]!.value;
          assert.equal(await version(), '2');
          await registry.stop();
          await admin.query(`UPDATE ${schema}.meta SET value = '3' WHERE key = 'registry.version'`);
          await assert.rejects(registry.start(), (err) => isNitrogenError(err, 'NITROGEN_ERR_CONFIG') && /layout 3, made by a newer Nitrogen; this one knows 2/.test(err.message));
          assert.equal(await version(), '3', 'never lowered');
        } finally {
          await close(registry);
        }
      });
    });

    it('creates its tables once when two instances start on an empty database at once', async () => {
      const schema = newSchema();
      const stores = [new PostgresStore(storeOptions(schema)), new PostgresStore(storeOptions(schema))];
      const registry = new PostgresRegistry(PostgresConnectionOptions.parse({ url: server.url(), schema }));
      await Promise.all([...stores, registry].map((s) => s.start()));
      await stores[0]!.append([sharedMsg()]);
      assert.equal((await stores[1]!.readFeed(null, 10)).messages.length, 1);
      for (const s of [...stores, registry]) await s.stop();
      await admin.query(`DROP SCHEMA ${schema} CASCADE`);
    });
  });
}

describe('PostgreSQL adapters without a server', () => {
  function closedPort(): Promise<number> {
    return new Promise((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as { port: number };
        probe.close(() => resolve(port));
      });
    });
  }

  it('fail fast at start when no server answers, naming the server and never the password', async () => {
    const port = await closedPort();
    const options = { url: `postgresql://nitrogen:s3cret-pw@127.0.0.1:${port}/fleet`, connectTimeout: '500ms' };
    for (const adapter of [new PostgresStore(PostgresStoreOptions.parse(options)), new PostgresRegistry(PostgresConnectionOptions.parse(options))]) {
      const started = Date.now();
      await assert.rejects(adapter.start(), (err) => {
        assert.ok(isNitrogenError(err, 'NITROGEN_ERR_STORE'), String(err));
        assert.match(err.message, new RegExp(`cannot use PostgreSQL at postgresql://127\\.0\\.0\\.1:${port}/fleet \\(connect timeout 500 ms\\): .*ECONNREFUSED`));
        assert.doesNotMatch(err.message, /s3cret-pw/);
        assert.ok(err.cause instanceof Error);
        return true;
      });
      assert.ok(Date.now() - started < 3000, 'within the connect timeout');
      await adapter.stop();
    }
  });

  it('refuse a connection string that is not one with NITROGEN_ERR_CONFIG, without repeating it', async () => {
    const malformed = new PostgresStore(PostgresStoreOptions.parse({ url: 'postgresql://nitrogen:s3cret-pw@db:notaport/fleet' }));
    await assert.rejects(malformed.start(), (err) => isNitrogenError(err, 'NITROGEN_ERR_CONFIG') && /options\.url/.test(err.message) && !err.message.includes('s3cret-pw'));
    await malformed.stop();
  });

  it('validate options, naming the field, and never offer synchronous_commit off', () => {
    assert.throws(() => PostgresStoreOptions.parse({ url: 'mysql://localhost' }), /postgres:\/\/ or postgresql:\/\//);
    assert.throws(() => PostgresStoreOptions.parse({ url: 'postgres://x', schema: 'Bad-Name' }), /schema/);
    assert.throws(() => PostgresStoreOptions.parse({ url: 'postgres://x', synchronousCommit: 'off' }), /synchronousCommit/);
    const defaults = PostgresStoreOptions.parse({ url: 'postgres://x' });
    assert.equal(defaults.synchronousCommit, 'on');
    assert.equal(defaults.schema, 'nitrogen');
    assert.equal(defaults.appendConcurrency, 4);
  });
});
