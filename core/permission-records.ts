import { randomUUID } from 'node:crypto';
import { requireAllowed } from './access.js';
import { NitrogenError } from './errors.js';
import { ADMIN_ID } from './permissions.js';
import type { Identity } from './ports/identity.js';
import type { Permission, Principal } from './ports/principal.js';
import type { Registry } from './ports/registry.js';
import type { PrincipalEvents } from './principal-events.js';
import { DEFAULT_PRIORITY, type PermissionGrant } from './schemas/permissions.js';

/**
 * The use cases on permission records — list, grant, revoke — with their checks. Creating or
 * deleting a record takes `admin` on its `principalFor` (on the system when that is null); a
 * change is in force when the use case resolves (`Identity.permissionsChanged`), for every
 * transport at once, and other instances of a cluster reload their records when they hear of it.
 *
 * Throws NITROGEN_ERR_FORBIDDEN, NITROGEN_ERR_NOT_FOUND (also for a record the caller may not
 * see, so its existence is not told) and NITROGEN_ERR_VALIDATION (a record issued to `admin`).
 */
export class PermissionRecords {
  constructor(
    private readonly identity: Identity,
    private readonly registry: Registry,
    private readonly events: PrincipalEvents,
  ) {}

  /** The records `actor` may see, in evaluation order: all of them for a system admin, else those about itself and those for principals it administers. */
  async visibleTo(actor: Principal): Promise<Permission[]> {
    return (await this.registry.listPermissions()).filter((p) => this.visible(actor, p));
  }

  /** Creates a record; it is in force when this resolves. */
  async grant(actor: Principal, grant: PermissionGrant): Promise<Permission> {
    const permission: Permission = {
      id: randomUUID(),
      issuedTo: grant.issuedTo ?? null,
      principalFor: grant.principalFor ?? null,
      action: grant.action ?? null,
      authorized: grant.authorized,
      priority: grant.priority ?? DEFAULT_PRIORITY,
      createdAt: new Date().toISOString(),
    };
    if (grant.expires !== undefined) permission.expires = grant.expires;
    requireAllowed(this.identity, actor, 'admin', permission.principalFor);
    if (permission.issuedTo === ADMIN_ID) throw new NitrogenError('NITROGEN_ERR_VALIDATION', 'issuedTo: the admin principal needs no permissions', { details: { field: 'issuedTo' } });
    await this.registry.createPermission(permission);
    await this.identity.permissionsChanged();
    this.events.permissionsChanged();
    return permission;
  }

  /** Deletes a record; it no longer counts when this resolves. */
  async revoke(actor: Principal, id: string): Promise<void> {
    const permission = (await this.registry.listPermissions()).find((p) => p.id === id);
    if (!permission || !this.visible(actor, permission)) throw new NitrogenError('NITROGEN_ERR_NOT_FOUND', `no permission '${id}'`);
    requireAllowed(this.identity, actor, 'admin', permission.principalFor);
    await this.registry.deletePermission(permission.id);
    await this.identity.permissionsChanged();
    this.events.permissionsChanged();
  }

  private visible(actor: Principal, p: Permission): boolean {
    return this.identity.authorize(actor, 'admin', null) || p.issuedTo === actor.id || p.principalFor === actor.id || (p.principalFor !== null && this.identity.authorize(actor, 'admin', p.principalFor));
  }
}
