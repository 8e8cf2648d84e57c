import { randomBytes } from 'node:crypto';
import { requireAllowed } from './access.js';
import { NitrogenError } from './errors.js';
import { ADMIN_ID } from './permissions.js';
import type { AccessToken, Identity } from './ports/identity.js';
import type { Page } from './ports/lifecycle.js';
import { publicPrincipal, type Principal, type PrincipalRecord, type PrincipalType } from './ports/principal.js';
import type { Registry } from './ports/registry.js';
import type { PrincipalEvents } from './principal-events.js';
import type { PrincipalChanges, Registration } from './schemas/principals.js';

/** Records of secrets replaced with an overlap: still valid until `expiresAt` (docs/api.md, "Rotating a secret"). */
export const PREVIOUS_SECRETS = 'previous-secrets';
export interface PreviousSecret {
  secretHash: string;
  /** The principal's createdAt when the secret was replaced: tokens issued with the old secret are stamped with both. */
  createdAt: string;
  expiresAt: string;
}

/** A registered principal, with its secret when the server made one: the only time it is shown. */
export interface Registered {
  principal: Principal;
  secret?: string;
}

export interface PrincipalsLimits {
  /** Most principals registered at once (`limits.maxBatch`). */
  maxBatch: number;
}

/**
 * The use cases on principals — register, list, read, change (and so disable), rotate a secret,
 * set a password, impersonate, delete — with their permission checks, the guards that protect
 * the bootstrap `admin`, and the revocation events that end a principal's open sessions. Every
 * transport, and any tool, goes through these, so the rules exist once.
 *
 * Inputs are plain values already shaped by core/schemas/principals.ts; `actor` is the
 * authenticated caller. Failures are NitrogenErrors: NITROGEN_ERR_FORBIDDEN (checked first,
 * before the target is looked up, so a refusal tells nothing of what exists), NITROGEN_ERR_NOT_FOUND,
 * NITROGEN_ERR_VALIDATION, NITROGEN_ERR_CONFLICT and NITROGEN_ERR_BATCH_TOO_LARGE.
 *
 * The `authorize…` and `check…` methods are the first steps of the use cases on their own: a
 * transport calls them before it reads a request body, so a caller who would be refused
 * uploads nothing. The use case runs them again; they cost a memoized lookup.
 */
export class Principals {
  constructor(
    private readonly identity: Identity,
    private readonly registry: Registry,
    private readonly events: PrincipalEvents,
    private readonly limits: PrincipalsLimits,
  ) {}

  /** Registering takes `admin` on the system. */
  authorizeRegistration(actor: Principal): void {
    requireAllowed(this.identity, actor, 'admin', null);
  }

  /** 413 NITROGEN_ERR_BATCH_TOO_LARGE beyond `limits.maxBatch` principals in one registration. */
  checkBatch(count: number): void {
    if (count > this.limits.maxBatch) {
      throw new NitrogenError('NITROGEN_ERR_BATCH_TOO_LARGE', `at most ${this.limits.maxBatch} principals per request, got ${count}`);
    }
  }

  /** Registers all of `registrations` or none (409 with `details.ids` when an id is taken). */
  async register(actor: Principal, registrations: readonly Registration[]): Promise<Registered[]> {
    this.authorizeRegistration(actor);
    this.checkBatch(registrations.length);
    const now = new Date().toISOString();
    const made = registrations.map((registration) => this.prepare(registration, now));
    for (const { record, password } of made) if (password !== undefined) record.secretHash = await this.identity.hashPassword(password);
    await this.registry.createPrincipals(made.map((m) => m.record));
    return made.map(({ record, secret }) => (secret === undefined ? { principal: publicPrincipal(record) } : { principal: publicPrincipal(record), secret }));
  }

  private prepare(registration: Registration, now: string): { record: PrincipalRecord; secret?: string; password?: string } {
    const { type } = registration;
    const id = registration.id ?? `${type}-${randomBytes(8).toString('hex')}`;
    const record: PrincipalRecord = { id, type, tags: registration.tags ?? [], createdAt: now, enabled: true };
    if (registration.name !== undefined) record.name = registration.name;
    if (registration.password !== undefined) return { record, password: registration.password };
    const { secret, secretHash } = this.identity.newSecret();
    record.secretHash = secretHash;
    return { record, secret };
  }

  /** The principals `actor` may view, ordered by id. With a wildcard grant, individual denials still hold: a page may come back short. */
  async list(actor: Principal, filter: { type?: PrincipalType; tag?: string }, page: { limit: number; cursor?: string }): Promise<Page<Principal>> {
    const scope = this.identity.scopeOf(actor, 'view');
    const found = await this.registry.listPrincipals({ ...filter, ids: scope === 'all' ? undefined : [...scope] }, page);
    return { items: found.items.filter((p) => this.identity.authorize(actor, 'view', p.id)).map(publicPrincipal), next: found.next };
  }

  async get(actor: Principal, id: string): Promise<Principal> {
    requireAllowed(this.identity, actor, 'view', id);
    return publicPrincipal(await this.find(id));
  }

  /** Changing a principal takes `admin` on it. */
  authorizeChange(actor: Principal, id: string): void {
    requireAllowed(this.identity, actor, 'admin', id);
  }

  /** Changes name, tags or enabled. Disabling ends the principal's sessions at once. */
  async change(actor: Principal, id: string, changes: PrincipalChanges): Promise<Principal> {
    this.authorizeChange(actor, id);
    if (id === ADMIN_ID && changes.enabled === false) throw new NitrogenError('NITROGEN_ERR_FORBIDDEN', 'the admin principal cannot be disabled');
    const principal = publicPrincipal(await this.registry.updatePrincipal(id, changes));
    if (changes.enabled === false) this.events.revoke(id, 'disabled');
    return principal;
  }

  /**
   * Replaces the secret with a new server-made one (for a user, its password). Returns it: the
   * only time it is shown. Without `overlapMs`, the old secret, the tokens issued with it and
   * the sessions opened with it end now. With it, the old secret and its tokens stay valid that
   * long beside the new one (a fleet rolls its credentials without a disconnect storm), and
   * sessions opened with the old secret meanwhile end when the overlap does.
   */
  async rotateSecret(actor: Principal, id: string, overlapMs = 0): Promise<Registered & { secret: string }> {
    this.authorizeChange(actor, id);
    this.guardAdminCredentials(actor, id);
    const before = await this.find(id);
    const { secret, secretHash } = this.identity.newSecret();
    if (overlapMs > 0 && before.secretHash !== undefined) {
      const previous: PreviousSecret = { secretHash: before.secretHash, createdAt: before.createdAt, expiresAt: new Date(Date.now() + overlapMs).toISOString() };
      await this.registry.putRecords([{ kind: PREVIOUS_SECRETS, key: id, principal: id, value: previous }]);
    }
    const principal = publicPrincipal(await this.registry.updatePrincipal(id, { secretHash }));
    if (overlapMs <= 0) {
      await this.registry.deleteRecord(PREVIOUS_SECRETS, id);
      this.events.revoke(id, 'secret rotated');
    }
    return { principal, secret };
  }

  /**
   * A person changes their own password; an administrator may set it. Checks who asks, then
   * that `id` is a user (400 naming `id` otherwise).
   */
  async checkPasswordChange(actor: Principal, id: string): Promise<void> {
    if (actor.id !== id) requireAllowed(this.identity, actor, 'admin', id);
    this.guardAdminCredentials(actor, id);
    const record = await this.find(id);
    if (record.type !== 'user') {
      throw new NitrogenError('NITROGEN_ERR_VALIDATION', 'id: only user principals have a password; rotate a device or app secret with POST /principals/:id/secret', { details: { field: 'id' } });
    }
  }

  /** Sets a user's password (already shaped: at least MIN_PASSWORD_LENGTH characters). */
  async setPassword(actor: Principal, id: string, password: string): Promise<void> {
    await this.checkPasswordChange(actor, id);
    await this.registry.updatePrincipal(id, { secretHash: await this.identity.hashPassword(password) });
    this.events.revoke(id, 'password changed');
  }

  /**
   * An access token for `id`, issued to `actor`, who holds `impersonate` on it. `impersonator` is
   * set when the actor's own token came from impersonation: one level only, so such a token
   * cannot outlive its impersonator by making another.
   */
  async impersonate(actor: Principal, id: string, impersonator?: string): Promise<AccessToken & { principal: Principal }> {
    if (impersonator !== undefined) throw new NitrogenError('NITROGEN_ERR_FORBIDDEN', 'a token obtained by impersonation cannot impersonate');
    requireAllowed(this.identity, actor, 'impersonate', id);
    // Impersonation must not reach the bootstrap superuser: no record can grant that.
    if (id === ADMIN_ID && actor.id !== ADMIN_ID) throw new NitrogenError('NITROGEN_ERR_FORBIDDEN', 'the admin principal cannot be impersonated');
    const principal = publicPrincipal(await this.find(id));
    if (!principal.enabled) throw new NitrogenError('NITROGEN_ERR_PRINCIPAL_DISABLED', `principal '${id}' is disabled`);
    return { ...(await this.identity.issueToken(principal, { actor })), principal };
  }

  /** Deletes the principal and the permission records issued to or for it; ends its sessions. */
  async delete(actor: Principal, id: string): Promise<void> {
    requireAllowed(this.identity, actor, 'admin', id);
    if (id === ADMIN_ID) throw new NitrogenError('NITROGEN_ERR_FORBIDDEN', 'the admin principal cannot be deleted');
    await this.registry.deletePrincipal(id);
    await this.identity.permissionsChanged();
    this.events.permissionsChanged();
    this.events.revoke(id, 'deleted');
  }

  /** The bootstrap admin's credentials are its own: no permission record reaches them. */
  private guardAdminCredentials(actor: Principal, id: string): void {
    if (id === ADMIN_ID && actor.id !== ADMIN_ID) throw new NitrogenError('NITROGEN_ERR_FORBIDDEN', "only the admin principal changes the admin's credentials");
  }

  private async find(id: string): Promise<PrincipalRecord> {
    const record = await this.registry.getPrincipal(id);
    if (!record) throw new NitrogenError('NITROGEN_ERR_NOT_FOUND', `no principal '${id}'`);
    return record;
  }
}
