import { definePlugin } from '../../core/plugin.js';
import { MemoryRegistry } from './memory-registry.js';
import { MemoryStore } from './memory-store.js';
import { NoneStore } from './none-store.js';

export { MemoryRegistry, MemoryStore, NoneStore };

export const memoryStorePlugin = definePlugin({
  name: 'memory',
  kind: 'store',
  description: 'messages in process memory (tests; nothing survives a restart)',
  create: () => new MemoryStore(),
});

export const memoryRegistryPlugin = definePlugin({
  name: 'memory',
  kind: 'registry',
  description: 'principals and permissions in process memory (tests; nothing survives a restart)',
  create: () => new MemoryRegistry(),
});

export const noneStorePlugin = definePlugin({
  name: 'none',
  kind: 'store',
  description: 'keeps no messages: for ack "sink" pass-through deployments',
  create: () => new NoneStore(),
});
