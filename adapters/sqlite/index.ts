import { z } from 'zod';
import { definePlugin } from '../../core/plugin.js';
import { SqliteRegistry } from './sqlite-registry.js';
import { SQLITE_STORE_DEFAULTS, SqliteStore } from './sqlite-store.js';

export { SqliteRegistry, SqliteStore };

const defaults = SQLITE_STORE_DEFAULTS;

export const sqliteStorePlugin = definePlugin({
  name: 'sqlite',
  kind: 'store',
  description: 'embedded SQLite store: fdatasynced journal per group commit, compacted into indexed chunks on a background thread',
  options: z.strictObject({
    file: z.string().min(1).default('messages.db'),
    tailBytes: z
      .number()
      .int()
      .min(2 ** 20)
      .default(defaults.tailBytes),
    compactBytes: z.number().int().positive().default(defaults.compactBytes),
    compactDelayMs: z.number().int().positive().default(defaults.compactDelayMs),
    segmentBytes: z
      .number()
      .int()
      .min(2 ** 20)
      .default(defaults.segmentBytes),
  }),
  create: ({ dataDir, logger }, options) => new SqliteStore(dataDir, options, logger),
});

export const sqliteRegistryPlugin = definePlugin({
  name: 'sqlite',
  kind: 'registry',
  description: 'embedded SQLite registry of principals and permissions',
  options: z.strictObject({ file: z.string().min(1).default('registry.db') }),
  create: ({ dataDir }, options) => new SqliteRegistry(dataDir, options),
});
