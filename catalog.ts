import type { PluginCatalog } from './core/plugin.js';

/**
 * The plugins shipped with Nitrogen, by kind and `use` name. Entries load lazily, so a
 * deployment pays only for the adapters its configuration names.
 */
export const defaultCatalog: PluginCatalog = {
  store: {
    memory: async () => (await import('./adapters/memory/index.js')).memoryStorePlugin,
    none: async () => (await import('./adapters/memory/index.js')).noneStorePlugin,
    sqlite: async () => (await import('./adapters/sqlite/index.js')).sqliteStorePlugin,
    mongodb: async () => (await import('./adapters/mongodb/index.js')).mongoStorePlugin,
    'azure-tables': async () => (await import('./adapters/azure-tables/index.js')).azureTablesStorePlugin,
    postgres: async () => (await import('./adapters/postgres/index.js')).postgresStorePlugin,
  },
  registry: {
    memory: async () => (await import('./adapters/memory/index.js')).memoryRegistryPlugin,
    sqlite: async () => (await import('./adapters/sqlite/index.js')).sqliteRegistryPlugin,
    mongodb: async () => (await import('./adapters/mongodb/index.js')).mongoRegistryPlugin,
    'azure-tables': async () => (await import('./adapters/azure-tables/index.js')).azureTablesRegistryPlugin,
    postgres: async () => (await import('./adapters/postgres/index.js')).postgresRegistryPlugin,
  },
  sink: {
    amqp: async () => (await import('./adapters/amqp-sinks/index.js')).amqpSinkPlugin,
    eventhubs: async () => (await import('./adapters/amqp-sinks/index.js')).eventHubsSinkPlugin,
  },
  cluster: {
    redis: async () => (await import('./adapters/redis/index.js')).redisBusPlugin,
  },
  transport: {
    mqtt: async () => (await import('./plugins/mqtt/index.js')).mqttPlugin,
    rest: async () => (await import('./plugins/rest/index.js')).restPlugin,
    portal: async () => (await import('./plugins/portal/index.js')).portalPlugin,
  },
};
