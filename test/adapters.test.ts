import { MemoryRegistry, MemoryStore } from '../adapters/memory/index.js';
import { SqliteRegistry, SqliteStore } from '../adapters/sqlite/index.js';
import type { Registry } from '../core/ports/registry.js';
import type { Store } from '../core/ports/store.js';
import { registryConformance } from './conformance/registry.js';
import { storeConformance } from './conformance/store.js';
import { tempDir } from './helpers/temp.js';

storeConformance('memory', {
  open: async () => new MemoryStore(),
  close: async () => {},
});

registryConformance('memory', {
  open: async () => new MemoryRegistry(),
  close: async () => {},
});

/** SQLite stores each get their own directory, removed when closed. */
function sqliteHarness<T extends Store | Registry>(make: (dir: string) => T) {
  const dirs = new Map<T, { path: string; remove(): void }>();
  const open = async (dir = tempDir()) => {
    const instance = make(dir.path);
    await instance.start!();
    dirs.set(instance, dir);
    return instance;
  };
  return {
    open: () => open(),
    reopen: async (old: T) => {
      const dir = dirs.get(old)!;
      dirs.delete(old);
      await old.stop!();
      return open(dir);
    },
    close: async (instance: T) => {
      await instance.stop!();
      dirs.get(instance)?.remove();
      dirs.delete(instance);
    },
  };
}

storeConformance('sqlite', sqliteHarness((dir) => new SqliteStore(dir, { file: 'messages.db' })));
registryConformance('sqlite', sqliteHarness((dir) => new SqliteRegistry(dir, { file: 'registry.db' })));
