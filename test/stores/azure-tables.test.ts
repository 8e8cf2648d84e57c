import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { TableClient } from '@azure/data-tables';
import { AzureTablesRegistry, AzureTablesStore } from '../../adapters/azure-tables/index.js';
import { AzureRegistryOptions } from '../../adapters/azure-tables/azure-registry.js';
import { AzureStoreOptions } from '../../adapters/azure-tables/azure-store.js';
import { messagePartition } from '../../adapters/azure-tables/keys.js';
import { isNitrogenError } from '../../core/errors.js';
import type { Message } from '../../core/message.js';
import type { Store } from '../../core/ports/store.js';
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
const storeOptions = (tablePrefix: string, extra: object = {}) => AzureStoreOptions.parse({ connectionString: azurite.connectionString, tablePrefix, ...extra });

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

storeConformance('azure-tables (Azurite)', harness((prefix) => new AzureTablesStore(storeOptions(prefix))));
registryConformance('azure-tables (Azurite)', harness((prefix) => new AzureTablesRegistry(AzureRegistryOptions.parse({ connectionString: azurite.connectionString, tablePrefix: prefix }))));

let n = 0;
function msg(fields: Partial<Message> = {}): Message {
  n++;
  return { id: `az-${n}-${randomBytes(3).toString('hex')}`, type: 'telemetry', from: 'car-1', ts: new Date(Date.UTC(2026, 0, 1, 0, 0, n)).toISOString(), body: { n }, ...fields };
}

async function drainFeed(store: Store, position: string | null = null): Promise<{ ids: string[]; position: string | null }> {
  const ids: string[] = [];
  for (;;) {
    const batch = await store.readFeed(position, 100);
    if (batch.messages.length === 0) return { ids, position };
    ids.push(...batch.messages.map((m) => m.id));
    position = batch.position;
  }
}

describe('Azure Tables store (Azurite)', function () {
  this.timeout(30_000);

  it('feeds every acknowledged message when two instances append at once and a reader polls meanwhile', async () => {
    const prefix = newPrefix();
    const [a, b] = [await openStore(prefix), await openStore(prefix)];
    const acked: string[] = [];
    const fed: string[] = [];
    let position: string | null = null;
    let writing = true;
    const reader = (async () => {
      // Reads while the writers commit: a position past an in-flight commit would lose it.
      while (writing) {
        const batch = await b.readFeed(position, 50);
        fed.push(...batch.messages.map((m) => m.id));
        position = batch.position;
      }
    })();
    const writer = async (store: Store, from: string) => {
      for (let round = 0; round < 6; round++) {
        const batches = Array.from({ length: 4 }, () => Array.from({ length: 10 }, () => msg({ from })));
        await Promise.all(batches.map(async (batch) => {
          await store.append(batch);
          acked.push(...batch.map((m) => m.id));
        }));
      }
    };
    await Promise.all([writer(a, 'car-a'), writer(b, 'car-b')]);
    writing = false;
    await reader;
    fed.push(...(await drainFeed(b, position)).ids);
    assert.equal(acked.length, 480);
    assert.deepEqual(new Set(fed), new Set(acked), 'the feed holds every acknowledged message');
    assert.equal(fed.length, acked.length, 'and each once');
    await Promise.all([a.stop(), b.stop()]);
  });

  it('does not feed a message again when another instance receives it again', async () => {
    const prefix = newPrefix();
    const [a, b] = [await openStore(prefix), await openStore(prefix)];
    const m = msg();
    await a.append([m]);
    await b.append([{ ...m, body: 'retry' }, msg()]);
    const { ids } = await drainFeed(a);
    assert.equal(ids.filter((id) => id === m.id).length, 1);
    assert.deepEqual(await b.get(m.id), m);
  });

  it('indexes and feeds a message whose first append died after storing it', async () => {
    const prefix = newPrefix();
    const store = await openStore(prefix);
    const m = msg({ from: 'car-crash' });
    // What an instance that died mid-append leaves: the message row, no index rows, no feed record.
    const raw = TableClient.fromConnectionString(azurite.connectionString, `${prefix}Messages`, { allowInsecureConnection: true });
    await raw.createEntity({ partitionKey: messagePartition(m.id), rowKey: m.id, w: 'dead-1', m0: JSON.stringify(m), mn: 1 });
    assert.deepEqual((await store.query({ from: ['car-crash'], order: 'asc', limit: 10 })).items, []);
    await store.append([{ ...m, body: 'retry' }]);
    assert.deepEqual((await store.query({ from: ['car-crash'], order: 'asc', limit: 10 })).items, [m]);
    assert.deepEqual((await drainFeed(store)).ids, [m.id]);
  });

  it('stores a 256 KiB message of multi-byte text and refuses one larger than an entity', async () => {
    const store = await openStore();
    const big = msg({ body: '€🚗'.repeat(256 * 1024 / 7) });
    await store.append([big]);
    assert.deepEqual(await store.get(big.id), big);
    const huge = msg({ body: 'x'.repeat(600 * 1024) });
    await assert.rejects(store.append([huge]), (err) => isNitrogenError(err, 'NITROGEN_ERR_PAYLOAD_TOO_LARGE') && err.message.includes(huge.id));
    assert.equal(await store.get(huge.id), null);
  });

  it('lists a message once when two streams of a query hold it, and finds tags with any character', async () => {
    const store = await openStore();
    const both = msg({ from: 'car-1', to: 'app-1', tags: ['a/b#c?d', 'ü|%'] });
    const other = msg({ from: 'car-2', to: 'app-1' });
    await store.append([both, other, msg({ from: 'car-3' })]);
    const page = await store.query({ scope: { from: ['car-1'], to: ['app-1'] }, order: 'desc', limit: 10 });
    assert.deepEqual(page.items.map((m) => m.id), [other.id, both.id]);
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

  it('validates its options and names what is missing', () => {
    assert.throws(() => AzureStoreOptions.parse({}), /connectionString, or account and accountKey/);
    assert.throws(() => AzureStoreOptions.parse({ account: 'x' }), /account and accountKey go together/);
    assert.throws(() => AzureStoreOptions.parse({ connectionString: 'x', tablePrefix: '9bad' }), /tablePrefix/);
  });
});
});
