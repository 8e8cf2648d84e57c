import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { MongoClient } from 'mongodb';
import { MongoRegistry, MongoStore } from '../../adapters/mongodb/index.js';
import { MongoConnectionOptions } from '../../adapters/mongodb/connection.js';
import { MongoStoreOptions } from '../../adapters/mongodb/mongo-store.js';
import { isNitrogenError } from '../../core/errors.js';
import type { Store } from '../../core/ports/store.js';
import { registryConformance } from '../conformance/registry.js';
import { storeConformance } from '../conformance/store.js';
import { drainFeed, sharedMsg, sharedStoreSuite } from './multi-instance.js';

const url = process.env.MONGODB_URL;

if (!url) {
  console.log('MongoDB conformance skipped: set MONGODB_URL to run it');
} else {
  describe('MongoDB adapters on MONGODB_URL', () => {
    const databases = new Map<object, string>();
    const newDatabase = () => 'nitrogen_test_' + randomBytes(5).toString('hex');
    const admin = new MongoClient(url);
    after(() => admin.close());

    function harness<T extends MongoStore | MongoRegistry>(make: (database: string) => T) {
      const open = async (database = newDatabase()) => {
        const instance = make(database);
        await instance.start();
        databases.set(instance, database);
        return instance;
      };
      return {
        open: () => open(),
        reopen: async (old: T) => {
          await old.stop();
          return open(databases.get(old));
        },
        close: async (instance: T) => {
          await instance.stop();
          await admin.db(databases.get(instance)).dropDatabase();
        },
      };
    }
    // The suites' messages expire in early 2026, already past: MongoDB's TTL monitor would delete
    // them at its own moment, so the suites run without the TTL index (purgeExpired is tested).
    const store = (database: string) => new MongoStore(MongoStoreOptions.parse({ url, database, ttlIndex: false }));

    storeConformance('mongodb', harness(store));
    registryConformance(
      'mongodb',
      harness((database) => new MongoRegistry(MongoConnectionOptions.parse({ url, database }))),
    );

    let shared = '';
    sharedStoreSuite('mongodb', {
      open: async () => {
        shared = newDatabase();
        const pair: [Store, Store] = [store(shared), store(shared)];
        for (const s of pair) await s.start!();
        return pair;
      },
      close: async (pair) => {
        for (const s of pair) await s.stop!();
        await admin.db(shared).dropDatabase();
      },
      recordNumbers: async () =>
        (
          await admin
            .db(shared)
            .collection('feed')
            .find({}, { projection: { _id: 1 } })
            .toArray()
        ).map((d) => d._id as unknown as number),
    });

    it('indexes and feeds a message whose first append died after storing it', async () => {
      const database = newDatabase();
      const s = store(database);
      await s.start();
      const m = sharedMsg({ from: 'car-crash' });
      // What an instance that died mid-append leaves: the message document, no feed record.
      await admin
        .db(database)
        .collection('messages')
        .insertOne({ id: m.id, k: `${m.ts}${m.id} ${m.from}`, from: m.from, type: m.type, e: JSON.stringify(m), w: 'dead-1' });
      await s.append([{ ...m, body: 'retry' }]);
      assert.deepEqual((await drainFeed(s)).ids, [m.id]);
      assert.deepEqual(await s.get(m.id), m);
      await s.stop();
      await admin.db(database).dropDatabase();
    });
  });
}

describe('MongoDB adapters without a server', () => {
  function closedPort(): Promise<number> {
    return new Promise((resolve) => {
      const server = createServer().listen(0, '127.0.0.1', () => {
        const { port } = server.address() as { port: number };
        server.close(() => resolve(port));
      });
    });
  }

  it('fail fast at start when no server answers, naming the host and never the password', async () => {
    const port = await closedPort();
    const options = { url: `mongodb://nitrogen:s3cret-pw@127.0.0.1:${port}/?directConnection=true`, serverSelectionTimeout: '500ms' };
    for (const adapter of [new MongoStore(MongoStoreOptions.parse(options)), new MongoRegistry(MongoConnectionOptions.parse(options))]) {
      const started = Date.now();
      await assert.rejects(adapter.start(), (err) => {
        assert.ok(isNitrogenError(err, 'NITROGEN_ERR_STORE'), String(err));
        assert.match(err.message, new RegExp(`cannot reach MongoDB at mongodb://127\\.0\\.0\\.1:${port}/ within 500 ms`));
        assert.doesNotMatch(err.message, /s3cret-pw/);
        assert.ok(err.cause instanceof Error);
        return true;
      });
      assert.ok(Date.now() - started < 3000, 'within the server-selection timeout');
      await adapter.stop();
    }
  });

  it('refuses a connection string that is not one, naming the option', async () => {
    assert.throws(() => MongoStoreOptions.parse({ url: 'http://localhost' }), /mongodb:\/\/ or mongodb\+srv:\/\//);
    assert.throws(() => MongoStoreOptions.parse({ url: 'mongodb://x', w: 'most' }), /w/);
    const malformed = new MongoStore(MongoStoreOptions.parse({ url: 'mongodb://user:pw@host:notaport/' }));
    await assert.rejects(malformed.start(), (err) => isNitrogenError(err, 'NITROGEN_ERR_CONFIG') && /options\.url/.test(err.message) && !err.message.includes('user:pw'));
  });

  it('use a durable write concern by default', () => {
    const options = MongoStoreOptions.parse({ url: 'mongodb://localhost' });
    assert.equal(options.w, 'majority');
    assert.equal(options.journal, true);
    assert.equal(options.database, 'nitrogen');
    assert.equal(options.ttlIndex, true);
  });
});
