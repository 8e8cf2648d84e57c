import { SignJWT, decodeJwt } from 'jose';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MemoryRegistry, MemoryStore } from '../adapters/memory/index.js';
import { SqliteRegistry, SqliteStore } from '../adapters/sqlite/index.js';
import { DefaultIdentity, DefaultIdentityOptions } from '../core/default-identity.js';
import { HashingOptions, PasswordHasher } from '../core/password-hasher.js';
import type { Message } from '../core/message.js';
import { createLogger } from '../core/logger.js';
import type { Registry } from '../core/ports/registry.js';
import type { Store } from '../core/ports/store.js';
import { identityConformance } from './conformance/identity.js';
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

storeConformance(
  'sqlite',
  sqliteHarness((dir) => new SqliteStore(dir, { file: 'messages.db' })),
);

/**
 * The SQLite store answers from its journal's tail until compaction moves messages into chunks
 * (seconds later): these compact after every append, or every other one, so that the suite
 * also reads from chunks, and from both at once.
 */
class CompactingSqliteStore extends SqliteStore {
  private appends = 0;

  constructor(
    dir: string,
    private readonly every: number,
  ) {
    super(dir, { file: 'messages.db' });
  }

  override async append(batch: Message[]): Promise<void> {
    await super.append(batch);
    if (++this.appends % this.every === 0) await this.compact();
  }
}

storeConformance(
  'sqlite, compacted after each append',
  sqliteHarness((dir) => new CompactingSqliteStore(dir, 1)),
);
storeConformance(
  'sqlite, compacted after every other append',
  sqliteHarness((dir) => new CompactingSqliteStore(dir, 2)),
);
registryConformance(
  'sqlite',
  sqliteHarness((dir) => new SqliteRegistry(dir, { file: 'registry.db' })),
);

const identityDirs = new Map<object, { path: string; remove(): void; hasher: PasswordHasher }>();

identityConformance('default identity over the memory registry', {
  open: async () => {
    const dir = tempDir();
    const registry = new MemoryRegistry();
    const hasher = new PasswordHasher(HashingOptions.parse({}));
    const identity = new DefaultIdentity(registry, DefaultIdentityOptions.parse({}), dir.path, createLogger('silent'), hasher);
    await identity.start();
    identityDirs.set(identity, { ...dir, hasher });
    return { identity, registry };
  },
  close: async ({ identity }) => {
    await identity.stop!();
    const parts = identityDirs.get(identity);
    await parts?.hasher.stop();
    parts?.remove();
  },
  expiredToken: async (identity, id) => {
    const key = readFileSync(join(identityDirs.get(identity)!.path, 'token.key'), 'utf8').trim();
    return new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(id)
      .setIssuer('nitrogen')
      .setExpirationTime(Math.floor(Date.now() / 1000) - 60)
      .sign(Buffer.from(key));
  },
  tokenWithoutExpiry: async (identity, id) => {
    // Everything a real token has, its stamp included, but `exp`.
    const key = readFileSync(join(identityDirs.get(identity)!.path, 'token.key'), 'utf8').trim();
    const real = await identity.issueToken({ id, type: 'device', tags: [], createdAt: '', enabled: true });
    const { stamp, typ } = decodeJwt(real.accessToken) as { stamp: string; typ: string };
    return new SignJWT({ stamp, typ }).setProtectedHeader({ alg: 'HS256' }).setSubject(id).setIssuer('nitrogen').setIssuedAt().sign(Buffer.from(key));
  },
});
