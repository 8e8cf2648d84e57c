import { definePlugin } from '../../core/plugin.js';
import { PostgresConnectionOptions } from './connection.js';
import { PostgresRegistry } from './postgres-registry.js';
import { PostgresStore, PostgresStoreOptions } from './postgres-store.js';

export { PostgresRegistry, PostgresStore };

export const postgresStorePlugin = definePlugin({
  name: 'postgres',
  kind: 'store',
  description: 'PostgreSQL store shared by several instances: one transaction per group commit, an index per query shape, a gap-free feed',
  options: PostgresStoreOptions,
  create: ({ logger }, options) => new PostgresStore(options, logger),
});

export const postgresRegistryPlugin = definePlugin({
  name: 'postgres',
  kind: 'registry',
  description: 'PostgreSQL registry of principals and permissions',
  options: PostgresConnectionOptions,
  create: ({ logger }, options) => new PostgresRegistry(options, logger),
});
