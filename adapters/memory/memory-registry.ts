import { decodeCursor, encodeCursor } from '../../core/cursor.js';
import { NitrogenError } from '../../core/errors.js';
import { comparePermissions } from '../../core/permissions.js';
import type { Page } from '../../core/ports/lifecycle.js';
import type { Permission, PrincipalRecord } from '../../core/ports/principal.js';
import type { PermissionFilter, PrincipalFilter, PrincipalPatch, Registry, RegistryRecord } from '../../core/ports/registry.js';

/** A Registry in memory: for tests and for trying things out. Nothing survives a restart. */
export class MemoryRegistry implements Registry {
  private readonly principals = new Map<string, PrincipalRecord>();
  private readonly permissions = new Map<string, Permission>();
  /** Records by kind, then key. */
  private readonly records = new Map<string, Map<string, RegistryRecord>>();

  async createPrincipals(records: PrincipalRecord[]): Promise<void> {
    const seen = new Set<string>();
    const taken: string[] = [];
    for (const record of records) {
      if (this.principals.has(record.id) || seen.has(record.id)) taken.push(record.id);
      seen.add(record.id);
    }
    if (taken.length > 0) throw new NitrogenError('NITROGEN_ERR_CONFLICT', `principal id taken: ${taken.join(', ')}`, { details: { ids: taken } });
    for (const record of records) this.principals.set(record.id, structuredClone(record));
  }

  async getPrincipal(id: string): Promise<PrincipalRecord | null> {
    const record = this.principals.get(id);
    return record ? structuredClone(record) : null;
  }

  async updatePrincipal(id: string, patch: PrincipalPatch): Promise<PrincipalRecord> {
    const record = this.principals.get(id);
    if (!record) throw new NitrogenError('NITROGEN_ERR_NOT_FOUND', `no principal '${id}'`);
    const updated = { ...record, ...structuredClone(patch) };
    this.principals.set(id, updated);
    return structuredClone(updated);
  }

  async deletePrincipal(id: string): Promise<void> {
    if (!this.principals.delete(id)) throw new NitrogenError('NITROGEN_ERR_NOT_FOUND', `no principal '${id}'`);
    for (const [key, p] of this.permissions) if (p.issuedTo === id || p.principalFor === id) this.permissions.delete(key);
    for (const kind of this.records.values()) for (const [key, r] of kind) if (r.principal === id) kind.delete(key);
  }

  async listPrincipals(filter: PrincipalFilter, page: { limit: number; cursor?: string }): Promise<Page<PrincipalRecord>> {
    const after = page.cursor ? (decodeCursor(page.cursor, ['string'])[0] as string) : undefined;
    const ids = filter.ids ? new Set(filter.ids) : undefined;
    const matching = [...this.principals.values()]
      .filter((p) => (after === undefined || p.id > after) && (!filter.type || p.type === filter.type) && (!filter.tag || p.tags.includes(filter.tag)) && (!ids || ids.has(p.id)))
      .sort((a, b) => (a.id < b.id ? -1 : 1));
    const items = matching.slice(0, page.limit).map((p) => structuredClone(p));
    const last = items[items.length - 1];
    return { items, next: matching.length > page.limit && last ? encodeCursor([last.id]) : null };
  }

  async touchPrincipals(ids: string[], at: string): Promise<void> {
    for (const id of ids) {
      const record = this.principals.get(id);
      if (record) record.lastSeenAt = at;
    }
  }

  async createPermission(permission: Permission): Promise<void> {
    if (this.permissions.has(permission.id)) throw new NitrogenError('NITROGEN_ERR_CONFLICT', `permission id taken: ${permission.id}`);
    this.permissions.set(permission.id, structuredClone(permission));
  }

  async listPermissions(filter: PermissionFilter = {}): Promise<Permission[]> {
    return [...this.permissions.values()]
      .filter((p) => (filter.issuedTo === undefined || p.issuedTo === filter.issuedTo) && (filter.principalFor === undefined || p.principalFor === filter.principalFor))
      .sort(comparePermissions)
      .map((p) => structuredClone(p));
  }

  async deletePermission(id: string): Promise<void> {
    if (!this.permissions.delete(id)) throw new NitrogenError('NITROGEN_ERR_NOT_FOUND', `no permission '${id}'`);
  }

  private kind(kind: string): Map<string, RegistryRecord> {
    let records = this.records.get(kind);
    if (!records) this.records.set(kind, (records = new Map<string, RegistryRecord>()));
    return records;
  }

  async putRecords(records: RegistryRecord[]): Promise<void> {
    for (const record of records) this.kind(record.kind).set(record.key, structuredClone(record));
  }

  async createRecord(record: RegistryRecord): Promise<void> {
    const kind = this.kind(record.kind);
    if (kind.has(record.key)) throw new NitrogenError('NITROGEN_ERR_CONFLICT', `${record.kind} '${record.key}' exists`);
    kind.set(record.key, structuredClone(record));
  }

  async getRecord(kind: string, key: string): Promise<RegistryRecord | null> {
    const record = this.records.get(kind)?.get(key);
    return record ? structuredClone(record) : null;
  }

  async listRecords(kind: string, filter: { principal?: string }, page: { limit: number; cursor?: string }): Promise<Page<RegistryRecord>> {
    const after = page.cursor ? (decodeCursor(page.cursor, ['string'])[0] as string) : undefined;
    const matching = [...(this.records.get(kind)?.values() ?? [])].filter((r) => (after === undefined || r.key > after) && (filter.principal === undefined || r.principal === filter.principal)).sort((a, b) => (a.key < b.key ? -1 : 1));
    const items = matching.slice(0, page.limit).map((r) => structuredClone(r));
    const last = items[items.length - 1];
    return { items, next: matching.length > page.limit && last ? encodeCursor([last.key]) : null };
  }

  async deleteRecord(kind: string, key: string): Promise<boolean> {
    return this.records.get(kind)?.delete(key) ?? false;
  }
}
