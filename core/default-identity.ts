import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SignJWT, errors as joseErrors, jwtVerify } from 'jose';
import { z } from 'zod';
import { duration, durationAtLeast, parseDuration } from './duration.js';
import { NitrogenError } from './errors.js';
import type { Logger } from './logger.js';
import { PermissionIndex } from './permissions.js';
import type { AccessToken, Identity } from './ports/identity.js';
import { publicPrincipal, type Action, type Principal, type PrincipalRecord, type PrincipalRef } from './ports/principal.js';
import type { Registry } from './ports/registry.js';
import { newSecret, scryptHash, verifySecret } from './secrets.js';

export const DefaultIdentityOptions = z.strictObject({
  /** Lifetime of access tokens. */
  tokenTtl: duration.default('1d'),
  /** HS256 key shared by every instance; without it a key is made once in `<dataDir>/token.key`. */
  tokenSecret: z.string().min(32).optional(),
  /** How often permission records are reloaded to see changes made by other instances. */
  permissionRefresh: duration.refine((value) => durationAtLeast(value, 100), 'must be at least 100ms').default('5s'),
});
export type DefaultIdentityOptions = z.output<typeof DefaultIdentityOptions>;

const ISSUER = 'nitrogen';

/**
 * Binds a token to the principal record it was issued for: a principal deleted and registered
 * again under the same id, or given a new secret, no longer accepts the tokens issued before.
 */
function tokenStamp(record: PrincipalRecord): string {
  return createHash('sha256').update(`${record.createdAt}\u0000${record.secretHash ?? ''}`).digest('base64url').slice(0, 16);
}

/**
 * The default Identity: SHA-256 digests for server-made secrets and scrypt for passwords
 * (core/secrets.ts), HS256 JWT access tokens with expiry (jose), and Nitrogen permission
 * records evaluated in memory (core/permissions.ts).
 */
export class DefaultIdentity implements Identity {
  private key!: Uint8Array;
  private index = new PermissionIndex([]);
  private refreshTimer?: NodeJS.Timeout;
  private reloading?: Promise<void>;
  private readonly tokenTtlMs: number;
  private readonly refreshMs: number;

  constructor(
    private readonly registry: Registry,
    private readonly options: DefaultIdentityOptions,
    private readonly dataDir: string,
    private readonly logger: Logger,
  ) {
    this.tokenTtlMs = parseDuration(options.tokenTtl);
    this.refreshMs = parseDuration(options.permissionRefresh);
  }

  async start(): Promise<void> {
    this.key = Buffer.from(this.options.tokenSecret ?? this.loadOrCreateKey(), 'utf8');
    await this.permissionsChanged();
    this.refreshTimer = setInterval(() => {
      this.permissionsChanged().catch((err) => this.logger.warn({ err }, 'permission refresh failed'));
    }, this.refreshMs);
    this.refreshTimer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.refreshTimer);
    await this.reloading?.catch(() => {});
  }

  private loadOrCreateKey(): string {
    const file = join(this.dataDir, 'token.key');
    if (existsSync(file)) return readFileSync(file, 'utf8').trim();
    const key = randomBytes(32).toString('hex');
    writeFileSync(file, key + '\n', { mode: 0o600, flag: 'wx' });
    return key;
  }

  async authenticateSecret(id: string, secret: string): Promise<Principal> {
    const record = await this.registry.getPrincipal(id);
    if (!(await verifySecret(secret, record?.secretHash)) || !record) {
      throw new NitrogenError('NITROGEN_ERR_BAD_CREDENTIALS', 'unknown principal or wrong secret');
    }
    if (!record.enabled) throw new NitrogenError('NITROGEN_ERR_PRINCIPAL_DISABLED', `principal '${id}' is disabled`);
    return publicPrincipal(record);
  }

  async authenticateToken(token: string): Promise<Principal> {
    let subject: string | undefined;
    let stamp: unknown;
    try {
      const { payload } = await jwtVerify(token, this.key, { algorithms: ['HS256'], issuer: ISSUER });
      subject = payload.sub;
      stamp = payload.stamp;
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) throw new NitrogenError('NITROGEN_ERR_TOKEN_EXPIRED', 'access token expired');
      throw new NitrogenError('NITROGEN_ERR_TOKEN_INVALID', 'access token is not valid', { cause: err });
    }
    const record = subject ? await this.registry.getPrincipal(subject) : null;
    if (!record) throw new NitrogenError('NITROGEN_ERR_TOKEN_INVALID', 'access token names no principal');
    if (stamp !== tokenStamp(record)) throw new NitrogenError('NITROGEN_ERR_TOKEN_INVALID', 'access token was revoked: the principal was re-created or its secret changed');
    if (!record.enabled) throw new NitrogenError('NITROGEN_ERR_PRINCIPAL_DISABLED', `principal '${record.id}' is disabled`);
    return publicPrincipal(record);
  }

  async issueToken(principal: Principal): Promise<AccessToken> {
    const record = await this.registry.getPrincipal(principal.id);
    if (!record) throw new NitrogenError('NITROGEN_ERR_NOT_FOUND', `no principal '${principal.id}'`);
    const expiresAt = Date.now() + this.tokenTtlMs;
    const accessToken = await new SignJWT({ typ: principal.type, stamp: tokenStamp(record) })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(principal.id)
      .setIssuer(ISSUER)
      .setIssuedAt()
      .setExpirationTime(Math.floor(expiresAt / 1000))
      .sign(this.key);
    return { accessToken, expiresAt: new Date(Math.floor(expiresAt / 1000) * 1000).toISOString() };
  }

  newSecret(): { secret: string; secretHash: string } {
    return newSecret();
  }

  hashPassword(password: string): Promise<string> {
    return scryptHash(password);
  }

  authorize(actor: PrincipalRef, action: Action, target: string | null): boolean {
    return this.currentIndex().authorize(actor, action, target);
  }

  scopeOf(actor: PrincipalRef, action: 'view' | 'subscribe'): 'all' | Set<string> {
    return this.currentIndex().scope(actor, action);
  }

  private currentIndex(): PermissionIndex {
    // An expired record changes decisions without a write: rebuild from the records held.
    if (this.index.stale()) this.index = new PermissionIndex(this.index.records);
    return this.index;
  }

  permissionsChanged(): Promise<void> {
    // Chained, so the last reload started also reads after the last change.
    const next = (this.reloading ?? Promise.resolve()).catch(() => {}).then(async () => {
      this.index = new PermissionIndex(await this.registry.listPermissions());
    });
    this.reloading = next;
    return next;
  }
}
