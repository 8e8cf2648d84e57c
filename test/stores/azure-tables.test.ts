import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { TableClient } from '@azure/data-tables';
import { AzureTablesRegistry, AzureTablesStore } from '../../adapters/azure-tables/index.js';
import { AzureRegistryOptions } from '../../adapters/azure-tables/azure-registry.js';
import { AzureStoreOptions } from '../../adapters/azure-tables/azure-store.js';
import { indexRows, messageKey } from '../../adapters/azure-tables/keys.js';
import type { Message } from '../../core/message.js';
import { compareMessages } from '../../core/query.js';
import { isNitrogenError } from '../../core/errors.js';
import { drainFeed, sharedMsg, sharedStoreSuite } from './multi-instance.js';
import { registryConformance } from '../conformance/registry.js';
import { storeConformance } from '../conformance/store.js';
import { AZURITE_ACCOUNT, AZURITE_KEY, startAzurite, type Azurite } from '../helpers/azurite.js';

describe('Azure Tables adapters on Azurite', () => {
  let azurite: Azurite;
  before(async function () {
    this.timeout(30_000);
    azurite = await startAzurite();
  });
  after(async () => {
    await azurite?.stop();
  });

  const newPrefix = () => 't' + randomBytes(5).toString('hex');
  const storeOptions = (tablePrefix: string) => AzureStoreOptions.parse({ connectionString: azurite.connectionString, tablePrefix });

  async function openStore(tablePrefix = newPrefix()): Promise<AzureTablesStore> {
    const store = new AzureTablesStore(storeOptions(tablePrefix));
    await store.start();
    return store;
  }

  /** Each store or registry gets tables of its own (a fresh prefix); reopening keeps the prefix. */
  function harness<T extends { start(): Promise<void>; stop?(): Promise<void> }>(make: (prefix: string) => T) {
    const prefixes = new Map<T, string>();
    const open = async (prefix = newPrefix()) => {
      const instance = make(prefix);
      await instance.start();
      prefixes.set(instance, prefix);
      return instance;
    };
    return {
      open: () => open(),
      reopen: async (old: T) => {
        await old.stop?.();
        return open(prefixes.get(old));
      },
      close: async (instance: T) => {
        await instance.stop?.();
      },
    };
  }

  storeConformance(
    'azure-tables (Azurite)',
    harness((prefix) => new AzureTablesStore(storeOptions(prefix))),
  );
  registryConformance(
    'azure-tables (Azurite)',
    harness((prefix) => new AzureTablesRegistry(AzureRegistryOptions.parse({ connectionString: azurite.connectionString, tablePrefix: prefix }))),
  );

  let sharedPrefix = '';
  sharedStoreSuite('azure-tables (Azurite)', {
    open: async () => {
      sharedPrefix = newPrefix();
      return [await openStore(sharedPrefix), await openStore(sharedPrefix)];
    },
    close: async () => {},
    recordNumbers: async () => {
      const feed = TableClient.fromConnectionString(azurite.connectionString, `${sharedPrefix}Feed`, { allowInsecureConnection: true });
      const numbers: number[] = [];
      for await (const row of feed.listEntities({ queryOptions: { filter: "PartitionKey eq 'feed' and RowKey ge 's' and RowKey lt 't'", select: ['RowKey'] } })) numbers.push(Number(row.rowKey!.slice(1)));
      return numbers;
    },
  });

  describe('Azure Tables store (Azurite)', function () {
    this.timeout(30_000);

    it('indexes and feeds a message whose first append died after storing it', async () => {
      const prefix = newPrefix();
      const store = await openStore(prefix);
      const m = sharedMsg({ from: 'car-crash' });
      // What an instance that died mid-append leaves: the message row, no index rows, no feed record.
      const raw = TableClient.fromConnectionString(azurite.connectionString, `${prefix}Messages`, { allowInsecureConnection: true });
      await raw.createEntity({ ...messageKey(m.from, m.id), w: 'dead-1', m0: JSON.stringify(m), mn: 1 });
      assert.deepEqual((await store.query({ from: ['car-crash'], order: 'asc', limit: 10 })).items, []);
      await store.append([{ ...m, body: 'retry' }]);
      assert.deepEqual((await store.query({ from: ['car-crash'], order: 'asc', limit: 10 })).items, [m]);
      assert.deepEqual((await drainFeed(store)).ids, [m.id]);
    });

    it('stores a 256 KiB message of multi-byte text and refuses one larger than an entity', async () => {
      const store = await openStore();
      const big = sharedMsg({ body: '€🚗'.repeat((256 * 1024) / 7) });
      await store.append([big]);
      assert.deepEqual(await store.get(big.id), big);
      const huge = sharedMsg({ body: 'x'.repeat(600 * 1024) });
      await assert.rejects(store.append([huge]), (err) => isNitrogenError(err, 'NITROGEN_ERR_PAYLOAD_TOO_LARGE') && err.message.includes(huge.id));
      assert.equal(await store.get(huge.id), null);
    });

    it('lists a message once when two streams of a query hold it, and finds tags with any character', async () => {
      const store = await openStore();
      const both = sharedMsg({ from: 'car-1', to: 'app-1', tags: ['a/b#c?d', 'ü|%'] });
      const other = sharedMsg({ from: 'car-2', to: 'app-1' });
      await store.append([both, other, sharedMsg({ from: 'car-3' })]);
      const page = await store.query({ scope: { from: ['car-1'], to: ['app-1'] }, order: 'desc', limit: 10 });
      assert.deepEqual(
        page.items.map((m) => m.id),
        [other.id, both.id],
      );
      assert.deepEqual((await store.query({ tags: ['ü|%', 'a/b#c?d'], order: 'asc', limit: 10 })).items, [both]);
    });

    it('fails fast with a clear error when the service is unreachable or refuses the key', async () => {
      const closed = new AzureTablesStore(AzureStoreOptions.parse({ account: AZURITE_ACCOUNT, accountKey: AZURITE_KEY, endpoint: 'http://127.0.0.1:1/devstoreaccount1', connectTimeout: '2s' }));
      const started = Date.now();
      await assert.rejects(closed.start(), (err) => isNitrogenError(err, 'NITROGEN_ERR_STORE') && err.message.includes('cannot use Azure Tables at http://127.0.0.1:1/devstoreaccount1') && err.cause !== undefined);
      assert.ok(Date.now() - started < 5000, 'within the connect timeout');
      const wrongKey = new AzureTablesRegistry(AzureRegistryOptions.parse({ connectionString: azurite.connectionString.replace(AZURITE_KEY, Buffer.from('wrong').toString('base64')) }));
      await assert.rejects(wrongKey.start(), (err) => isNitrogenError(err, 'NITROGEN_ERR_STORE') && /key was refused/.test(err.message) && !err.message.includes('AccountKey'));
    });

    it('spells (ts, id) order into row keys, ascending and exactly reversed', () => {
      const ids = ['a', 'ab', 'abc', 'b', 'B', 'a-1', 'a.1', 'a:1', 'a~', 'Z9', '0', '00', '~~~'];
      const times = [0, 1, 999, Date.UTC(2026, 0, 1), Date.UTC(9999, 11, 31, 23, 59, 59, 999)];
      const messages = times.flatMap((ms) => ids.map((id) => ({ id, from: 'car-1', type: 't', ts: new Date(ms).toISOString() })));
      const keys = (m: (typeof messages)[number]) =>
        indexRows(m, 'batch')
          .filter((r) => r.partitionKey === 'f|car-1')
          .map((r) => r.rowKey);
      const byKey = (i: 0 | 1) => [...messages].sort((a, b) => (keys(a)[i]! < keys(b)[i]! ? -1 : 1));
      const expected = [...messages].sort((a, b) => compareMessages(a as Message, b as Message));
      assert.deepEqual(byKey(0), expected);
      assert.deepEqual(byKey(1), [...expected].reverse());
    });

    it('validates its options and names what is missing', () => {
      assert.throws(() => AzureStoreOptions.parse({}), /connectionString, or account and accountKey/);
      assert.throws(() => AzureStoreOptions.parse({ account: 'x' }), /account and accountKey go together/);
      assert.throws(() => AzureStoreOptions.parse({ connectionString: 'x', tablePrefix: '9bad' }), /tablePrefix/);
    });

    it('refuses a connection string that is not one, without repeating it', async () => {
      const store = new AzureTablesStore(AzureStoreOptions.parse({ connectionString: 'AccountName=a;AccountKey=c2VjcmV0LWtleQ==;' }));
      await assert.rejects(store.start(), (err) => isNitrogenError(err, 'NITROGEN_ERR_CONFIG') && /options\.connectionString/.test(err.message) && !err.message.includes('c2VjcmV0'));
    });
  });
});
