import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SignJWT, errors as joseErrors, jwtVerify } from 'jose';
import { z } from 'zod';
import { duration, durationAtLeast, parseDuration } from './duration.js';
import { NitrogenError } from './errors.js';
import type { Logger } from './logger.js';
import type { PasswordHasher } from './password-hasher.js';
import { ADMIN_ID, PermissionIndex } from './permissions.js';
import type { AccessToken, Authentication, Identity, IssueOptions } from './ports/identity.js';
import { publicPrincipal, type Action, type Principal, type PrincipalRecord, type PrincipalRef } from './ports/principal.js';
import type { Registry } from './ports/registry.js';
import { newSecret, parseDigest, sha256Hash, sha256Matches } from './secrets.js';
import { PREVIOUS_SECRETS, type PreviousSecret } from './principals.js';

export const DefaultIdentityOptions = z.strictObject({
  /** Lifetime of access tokens. */
  tokenTtl: duration.default('1d'),
  /** Lifetime of tokens obtained by impersonation (at most `tokenTtl`). */
  impersonationTtl: duration.default('1h'),
  /** HS256 key shared by every instance; without it a key is made once in `<dataDir>/token.key`. */
  tokenSecret: z.string().min(32).optional(),
  /** How often permission records are reloaded to see changes made by other instances. */
  permissionRefresh: duration.refine((value) => durationAtLeast(value, 100), 'must be at least 100ms').default('5s'),
});
export type DefaultIdentityOptions = z.output<typeof DefaultIdentityOptions>;

const ISSUER = 'nitrogen';
/** A compact JWS: three base64url parts, the header a JSON object (`eyJ` is `{"`). */
const JWT_SHAPE = /^eyJ[\w-]*\.[\w-]+\.[\w-]+$/;
/** Checked in place of a missing digest, so an unknown id costs what a known device costs. */
const DUMMY_DIGEST = sha256Hash('nitrogen-dummy-secret');

/** RFC 8693 §4.1 `act`: who obtained an impersonation token, with the stamp of its record then. */
interface ActClaim {
  sub: string;
  stamp: string;
}

function invalid(message: string): NitrogenError {
  return new NitrogenError('NITROGEN_ERR_TOKEN_INVALID', message);
}

/**
 * Binds a token to the principal record it was issued for: a principal deleted and registered
 * again under the same id, or given a new secret, no longer accepts the tokens issued before.
 */
function tokenStamp(record: PrincipalRecord): string {
  return createHash('sha256')
    .update(`${record.createdAt}\u0000${record.secretHash ?? ''}`)
    .digest('base64url')
    .slice(0, 16);
}

/**
 * The default Identity: SHA-256 digests for server-made secrets and scrypt for passwords
 * (core/secrets.ts, hashed on the core's bounded PasswordHasher threads), HS256 JWT access
 * tokens that must carry an expiry (jose), and Nitrogen permission records evaluated in memory
 * (core/permissions.ts).
 */
export class DefaultIdentity implements Identity {
  private key!: Uint8Array;
  private index = new PermissionIndex([]);
  private refreshTimer?: NodeJS.Timeout;
  private reloading?: Promise<void>;
  private readonly tokenTtlMs: number;
  private readonly impersonationTtlMs: number;
  private readonly refreshMs: number;

  constructor(
    private readonly registry: Registry,
    private readonly options: DefaultIdentityOptions,
    private readonly dataDir: string,
    private readonly logger: Logger,
    private readonly hasher: PasswordHasher,
  ) {
    this.tokenTtlMs = parseDuration(options.tokenTtl);
    this.impersonationTtlMs = Math.min(this.tokenTtlMs, parseDuration(options.impersonationTtl));
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

  async authenticateSecret(id: string, secret: string): Promise<Authentication> {
    const record = await this.registry.getPrincipal(id);
    const stored = record?.secretHash ?? DUMMY_DIGEST;
    const digest = parseDigest(stored);
    let matches = false;
    if (digest.kind === 'sha256') matches = sha256Matches(secret, digest.expected);
    else if (digest.kind === 'scrypt') matches = await this.hasher.verify(secret, stored);
    let expiresAt: number | null = null;
    if (!matches && record) {
      // Rotated with an overlap: the old secret holds until the overlap ends, and so does what it opens.
      const previous = await this.previousSecret(id);
      if (previous && (await this.secretMatches(secret, previous.secretHash))) {
        matches = true;
        expiresAt = Date.parse(previous.expiresAt);
      }
    }
    if (!matches || !record) throw new NitrogenError('NITROGEN_ERR_BAD_CREDENTIALS', 'unknown principal or wrong secret');
    if (!record.enabled) throw new NitrogenError('NITROGEN_ERR_PRINCIPAL_DISABLED', `principal '${id}' is disabled`);
    return { principal: publicPrincipal(record), expiresAt };
  }

  private async secretMatches(secret: string, stored: string): Promise<boolean> {
    const digest = parseDigest(stored);
    if (digest.kind === 'sha256') return sha256Matches(secret, digest.expected);
    if (digest.kind === 'scrypt') return this.hasher.verify(secret, stored);
    return false;
  }

  /** The secret replaced with an overlap that has not ended, if any. */
  private async previousSecret(id: string): Promise<PreviousSecret | null> {
    const previous = (await this.registry.getRecord(PREVIOUS_SECRETS, id))?.value as PreviousSecret | undefined;
    return previous && Date.parse(previous.expiresAt) > Date.now() ? previous : null;
  }

  isAccessToken(credential: string): boolean {
    return JWT_SHAPE.test(credential);
  }

  async authenticateToken(token: string): Promise<Authentication> {
    let claims: { sub?: string; exp?: number; stamp?: unknown; act?: unknown };
    try {
      // A token without `exp` would never end: it is refused like a forged one.
      ({ payload: claims } = await jwtVerify(token, this.key, { algorithms: ['HS256'], issuer: ISSUER, requiredClaims: ['exp', 'sub'] }));
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) throw new NitrogenError('NITROGEN_ERR_TOKEN_EXPIRED', 'access token expired');
      throw new NitrogenError('NITROGEN_ERR_TOKEN_INVALID', 'access token is not valid', { cause: err });
    }
    const record = await this.registry.getPrincipal(claims.sub!);
    if (!record) throw invalid('access token names no principal');
    let expiresAt = claims.exp! * 1000;
    if (claims.stamp !== tokenStamp(record)) {
      // Issued with a secret replaced with an overlap: valid until the overlap ends.
      const previous = await this.previousSecret(record.id);
      if (!previous || previous.createdAt !== record.createdAt || claims.stamp !== tokenStamp({ ...record, secretHash: previous.secretHash })) {
        throw invalid('access token was revoked: the principal was re-created or its secret changed');
      }
      expiresAt = Math.min(expiresAt, Date.parse(previous.expiresAt));
    }
    if (!record.enabled) throw new NitrogenError('NITROGEN_ERR_PRINCIPAL_DISABLED', `principal '${record.id}' is disabled`);
    const authentication: Authentication = { principal: publicPrincipal(record), expiresAt };
    if (claims.act !== undefined) authentication.actor = await this.checkActor(claims.act, record.id);
    return authentication;
  }

  /** An impersonation token holds only while its actor exists unchanged, is enabled and may still impersonate. */
  private async checkActor(act: unknown, subject: string): Promise<string> {
    const claim = act as Partial<ActClaim> | null;
    if (typeof claim?.sub !== 'string' || typeof claim.stamp !== 'string') throw invalid('access token has a malformed act claim');
    const actor = await this.registry.getPrincipal(claim.sub);
    if (!actor || claim.stamp !== tokenStamp(actor)) throw invalid(`access token was revoked: its impersonator '${claim.sub}' was deleted or its secret changed`);
    if (!actor.enabled) throw invalid(`access token was revoked: its impersonator '${claim.sub}' is disabled`);
    const allowed = this.authorize(actor, 'impersonate', subject) && (subject !== ADMIN_ID || actor.id === ADMIN_ID);
    if (!allowed) throw invalid(`access token was revoked: '${claim.sub}' may no longer impersonate '${subject}'`);
    return actor.id;
  }

  async issueToken(principal: Principal, options: IssueOptions = {}): Promise<AccessToken> {
    const record = await this.registry.getPrincipal(principal.id);
    if (!record) throw new NitrogenError('NITROGEN_ERR_NOT_FOUND', `no principal '${principal.id}'`);
    const claims: { typ: string; stamp: string; act?: ActClaim } = { typ: principal.type, stamp: tokenStamp(record) };
    let ttl = this.tokenTtlMs;
    if (options.actor) {
      const actor = await this.registry.getPrincipal(options.actor.id);
      if (!actor) throw new NitrogenError('NITROGEN_ERR_NOT_FOUND', `no principal '${options.actor.id}'`);
      claims.act = { sub: actor.id, stamp: tokenStamp(actor) };
      ttl = this.impersonationTtlMs;
    }
    const expiresAt = Math.floor((Date.now() + ttl) / 1000);
    const accessToken = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setSubject(principal.id).setIssuer(ISSUER).setIssuedAt().setExpirationTime(expiresAt).sign(this.key);
    return { accessToken, expiresAt: new Date(expiresAt * 1000).toISOString() };
  }

  newSecret(): { secret: string; secretHash: string } {
    return newSecret();
  }

  hashPassword(password: string): Promise<string> {
    return this.hasher.hash(password);
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
    const next = (this.reloading ?? Promise.resolve())
      .catch(() => {})
      .then(async () => {
        this.index = new PermissionIndex(await this.registry.listPermissions());
      });
    this.reloading = next;
    return next;
  }
}
