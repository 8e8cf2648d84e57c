import { definePlugin } from '../../core/plugin.js';
import { MongoConnectionOptions } from './connection.js';
import { MongoRegistry } from './mongo-registry.js';
import { MongoStore, MongoStoreOptions } from './mongo-store.js';

export { MongoRegistry, MongoStore };

export const mongoStorePlugin = definePlugin({
  name: 'mongodb',
  kind: 'store',
  description: 'MongoDB store shared by several instances: an index per query shape, a TTL index, a numbered feed',
  options: MongoStoreOptions,
  create: (_context, options) => new MongoStore(options),
});

export const mongoRegistryPlugin = definePlugin({
  name: 'mongodb',
  kind: 'registry',
  description: 'MongoDB registry of principals and permissions',
  options: MongoConnectionOptions,
  create: (_context, options) => new MongoRegistry(options),
});
