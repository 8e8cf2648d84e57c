import type { Lifecycle, Page } from './lifecycle.js';
import type { Permission, PrincipalRecord, PrincipalType } from './principal.js';

export interface PrincipalFilter {
  type?: PrincipalType;
  /** The principal must hold this tag. */
  tag?: string;
  /** Only these ids (used to list what a caller may view). */
  ids?: string[];
}

export interface PermissionFilter {
  issuedTo?: string;
  principalFor?: string;
}

export type PrincipalPatch = Partial<Pick<PrincipalRecord, 'name' | 'tags' | 'enabled' | 'secretHash' | 'lastSeenAt'>>;

/**
 * The Registry port: principals and permission records.
 *
 * Guarantees every adapter keeps (checked by test/conformance/registry.ts):
 * - `createPrincipals` is all or nothing: if any id is taken (or repeated in the batch) it
 *   throws NITROGEN_ERR_CONFLICT with `details.ids` and stores none of the batch.
 * - Reads see every write that resolved before them (read-your-writes).
 * - `listPrincipals` returns principals ordered by id; paging with `next` visits every
 *   principal present for the whole walk exactly once.
 * - `updatePrincipal` and `deletePrincipal` throw NITROGEN_ERR_NOT_FOUND for an unknown id;
 *   `deletePrincipal` also deletes permission records issued to or for that principal.
 * - `listPermissions` returns records ordered by priority, then creation time, then id.
 * - Driver failures surface as NITROGEN_ERR_STORE with the driver error as `cause`.
 */
export interface Registry extends Lifecycle {
  createPrincipals(records: PrincipalRecord[]): Promise<void>;
  getPrincipal(id: string): Promise<PrincipalRecord | null>;
  updatePrincipal(id: string, patch: PrincipalPatch): Promise<PrincipalRecord>;
  deletePrincipal(id: string): Promise<void>;
  listPrincipals(filter: PrincipalFilter, page: { limit: number; cursor?: string }): Promise<Page<PrincipalRecord>>;
  /** Sets `lastSeenAt` of many principals at once; unknown ids are ignored. */
  touchPrincipals(ids: string[], at: string): Promise<void>;
  /** Throws NITROGEN_ERR_CONFLICT when the id is taken. */
  createPermission(permission: Permission): Promise<void>;
  listPermissions(filter?: PermissionFilter): Promise<Permission[]>;
  /** Throws NITROGEN_ERR_NOT_FOUND for an unknown id. */
  deletePermission(id: string): Promise<void>;
}
