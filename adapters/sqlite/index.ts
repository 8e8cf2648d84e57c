import { z } from 'zod';
import { definePlugin } from '../../core/plugin.js';
import { SqliteRegistry } from './sqlite-registry.js';
import { SqliteStore } from './sqlite-store.js';

export { SqliteRegistry, SqliteStore };

export const sqliteStorePlugin = definePlugin({
  name: 'sqlite',
  kind: 'store',
  description: 'embedded SQLite store: WAL, synchronous=FULL, group commit on a writer thread',
  options: z.strictObject({ file: z.string().min(1).default('messages.db') }),
  create: ({ dataDir }, options) => new SqliteStore(dataDir, options),
});

export const sqliteRegistryPlugin = definePlugin({
  name: 'sqlite',
  kind: 'registry',
  description: 'embedded SQLite registry of principals and permissions',
  options: z.strictObject({ file: z.string().min(1).default('registry.db') }),
  create: ({ dataDir }, options) => new SqliteRegistry(dataDir, options),
});
