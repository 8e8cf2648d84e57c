import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from './logger.js';
import { ADMIN_ID } from './permissions.js';
import type { Identity } from './ports/identity.js';
import type { Registry } from './ports/registry.js';
import { verifySecret } from './secrets.js';
import { randomBytes } from 'node:crypto';

/**
 * Makes sure the bootstrap principal `admin` exists (docs/configuration.md). With a configured secret
 * its hash is set (and replaced when the secret changed); without one, a random secret is made
 * on the first start and written to `<dataDir>/admin.secret` with mode 0600.
 * Returns the path of that file when one was written.
 */
export async function bootstrapAdmin(registry: Registry, identity: Identity, dataDir: string, adminSecret: string | undefined, logger: Logger): Promise<string | undefined> {
  const existing = await registry.getPrincipal(ADMIN_ID);
  if (adminSecret !== undefined) {
    if (existing && (await verifySecret(adminSecret, existing.secretHash))) return undefined;
    const secretHash = await identity.hashPassword(adminSecret);
    if (existing) await registry.updatePrincipal(ADMIN_ID, { secretHash, enabled: true });
    else await createAdmin(registry, secretHash);
    logger.info('admin principal secret set from configuration');
    return undefined;
  }
  if (existing) return undefined;
  const file = join(dataDir, 'admin.secret');
  const secret = randomBytes(24).toString('base64url');
  // A person may type this one, so it is hashed like a password.
  await createAdmin(registry, await identity.hashPassword(secret));
  if (existsSync(file)) logger.warn({ file }, 'replacing a stale admin.secret: the registry had no admin principal');
  writeFileSync(file, secret + '\n', { mode: 0o600 });
  return file;
}

async function createAdmin(registry: Registry, secretHash: string): Promise<void> {
  await registry.createPrincipals([
    { id: ADMIN_ID, type: 'user', name: 'Administrator', tags: [], createdAt: new Date().toISOString(), enabled: true, secretHash },
  ]);
}
