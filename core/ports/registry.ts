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

/**
 * A small JSON document the core keeps beside a principal: an API key, a claim code, a
 * certificate, a device's presence, the types it sent, its twin (docs/architecture.md,
 * "Devices"). `kind` names the collection, `key` is unique within it, and `principal` is the
 * principal the record belongs to: deleting that principal deletes its records.
 */
export interface RegistryRecord<Value = unknown> {
  kind: string;
  key: string;
  principal: string;
  /** Any JSON value; adapters store it as text and give back an equal value. */
  value: Value;
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
 * - Records: `putRecords` writes each record whole, replacing the one of its kind and key (a
 *   failure may leave part of a batch written: writing it again is harmless); `createRecord` throws NITROGEN_ERR_CONFLICT when the kind and key are taken;
 *   `deleteRecord` answers whether it deleted one, so of two callers deleting the same record
 *   exactly one gets true (what makes a claim code usable once); `listRecords` orders by key and
 *   pages like `listPrincipals`; `deletePrincipal` deletes the principal's records.
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
  putRecords(records: RegistryRecord[]): Promise<void>;
  createRecord(record: RegistryRecord): Promise<void>;
  getRecord(kind: string, key: string): Promise<RegistryRecord | null>;
  listRecords(kind: string, filter: { principal?: string }, page: { limit: number; cursor?: string }): Promise<Page<RegistryRecord>>;
  deleteRecord(kind: string, key: string): Promise<boolean>;
}
