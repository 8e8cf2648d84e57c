import { odata } from '@azure/data-tables';
import { decodeCursor, encodeCursor } from '../../core/cursor.js';
import { NitrogenError } from '../../core/errors.js';
import { comparePermissions } from '../../core/permissions.js';
import type { Page } from '../../core/ports/lifecycle.js';
import type { Action, Permission, PrincipalRecord, PrincipalType } from '../../core/ports/principal.js';
import type { PermissionFilter, PrincipalFilter, PrincipalPatch, Registry, RegistryRecord } from '../../core/ports/registry.js';
import { AzureConnectionOptions, createTables, mapLimit, openTable, requireCredentials, statusOf, storeError, type Table } from './connection.js';
import { checkEntitySize, deleteAll, getOrNull, readText, textProperties, upsertAll, type Entity } from './entities.js';
import { escapeKey, unescapeKey } from './keys.js';

export const AzureRegistryOptions = AzureConnectionOptions.superRefine(requireCredentials);

const PERMISSIONS = 'permission';
const IN_FLIGHT = 16;
const MAX_UPDATE_ATTEMPTS = 10;

interface PrincipalRow {
  type: string;
  name?: string;
  tags: string;
  createdAt: string;
  lastSeenAt?: string;
  enabled: boolean;
  secretHash?: string;
}

interface PermissionRow {
  issuedTo?: string;
  principalFor?: string;
  action?: string;
  authorized: boolean;
  priority: number;
  expires?: string;
  createdAt: string;
}

interface RecordRow {
  partitionKey: string;
  rowKey: string;
  principal: string;
  [text: string]: unknown;
}

/** A record: its kind is the partition, its key the row; the value is JSON text in 32 KiB properties. */
function recordEntity(r: RegistryRecord): Entity {
  const entity: Entity = { partitionKey: escapeKey(r.kind), rowKey: escapeKey(r.key), principal: r.principal, ...textProperties('value', JSON.stringify(r.value)) };
  checkEntitySize(entity, `${r.kind} record '${r.key}'`);
  return entity;
}

function toRecord(row: RecordRow): RegistryRecord {
  return { kind: unescapeKey(row.partitionKey), key: unescapeKey(row.rowKey), principal: row.principal, value: JSON.parse(readText(row, 'value')) as unknown };
}

function principalEntity(r: PrincipalRecord): Entity {
  const row: Entity = { partitionKey: escapeKey(r.id), rowKey: '', type: r.type, tags: JSON.stringify(r.tags), createdAt: r.createdAt, enabled: r.enabled };
  if (r.name !== undefined) row.name = r.name;
  if (r.lastSeenAt !== undefined) row.lastSeenAt = r.lastSeenAt;
  if (r.secretHash !== undefined) row.secretHash = r.secretHash;
  return row;
}

function toPrincipal(row: PrincipalRow & { partitionKey?: string }): PrincipalRecord {
  const record: PrincipalRecord = { id: unescapeKey(row.partitionKey!), type: row.type as PrincipalType, tags: JSON.parse(row.tags) as string[], createdAt: row.createdAt, enabled: row.enabled };
  if (row.name !== undefined) record.name = row.name;
  if (row.lastSeenAt !== undefined) record.lastSeenAt = row.lastSeenAt;
  if (row.secretHash !== undefined) record.secretHash = row.secretHash;
  return record;
}

function toPermission(row: PermissionRow & { rowKey?: string }): Permission {
  const p: Permission = {
    id: unescapeKey(row.rowKey!),
    issuedTo: row.issuedTo ?? null,
    principalFor: row.principalFor ?? null,
    action: (row.action ?? null) as Action | null,
    authorized: row.authorized,
    priority: row.priority,
    createdAt: row.createdAt,
  };
  if (row.expires !== undefined) p.expires = row.expires;
  return p;
}

/**
 * The Registry on Azure Tables. Each principal is its own partition (key: its id), so
 * authentication reads spread over the service; a scan of the table returns principals in id
 * order, which `listPrincipals` pages through. Permission records, few and read whole by every
 * instance, share one partition of `<prefix>Permissions`.
 *
 * A batch of principals spans partitions, so it cannot be one transaction: `createPrincipals`
 * inserts each and, when one id is taken, deletes those it inserted before it throws. Another
 * reader may glimpse such a batch for that moment; no writer can take part of it.
 */
export class AzureTablesRegistry implements Registry {
  private principals!: Table;
  private permissions!: Table;
  private records!: Table;

  constructor(private readonly options: AzureConnectionOptions) {}

  async start(): Promise<void> {
    this.principals = openTable(this.options, 'Principals', 'azure-tables registry');
    this.permissions = openTable(this.options, 'Permissions', 'azure-tables registry');
    this.records = openTable(this.options, 'Records', 'azure-tables registry');
    await createTables([this.principals, this.permissions, this.records], this.options.connectTimeout, 'azure-tables registry');
  }

  async createPrincipals(records: PrincipalRecord[]): Promise<void> {
    const seen = new Set<string>();
    const repeated = records.filter((r) => seen.has(r.id) || !seen.add(r.id)).map((r) => r.id);
    if (repeated.length > 0) throw new NitrogenError('NITROGEN_ERR_CONFLICT', `principal id repeated: ${repeated.join(', ')}`, { details: { ids: repeated } });
    const outcomes = await mapLimit(records, IN_FLIGHT, async (r) => {
      try {
        await this.principals.client.createEntity(principalEntity(r));
        return 'created' as const;
      } catch (err) {
        return statusOf(err) === 409 ? ('taken' as const) : err;
      }
    });
    if (outcomes.every((o) => o === 'created')) return;
    await mapLimit(
      records.filter((_, i) => outcomes[i] === 'created'),
      IN_FLIGHT,
      (r) => this.principals.client.deleteEntity(escapeKey(r.id), '').catch(() => {}),
    );
    const taken = records.filter((_, i) => outcomes[i] === 'taken').map((r) => r.id);
    if (taken.length > 0) throw new NitrogenError('NITROGEN_ERR_CONFLICT', `principal id taken: ${taken.join(', ')}`, { details: { ids: taken } });
    throw storeError(
      'create principals',
      outcomes.find((o) => o !== 'created'),
    );
  }

  private async principalRow(id: string) {
    return getOrNull<PrincipalRow>(this.principals.client, escapeKey(id), '', 'read a principal');
  }

  async getPrincipal(id: string): Promise<PrincipalRecord | null> {
    const row = await this.principalRow(id);
    return row ? toPrincipal(row) : null;
  }

  async updatePrincipal(id: string, patch: PrincipalPatch): Promise<PrincipalRecord> {
    for (let attempt = 1; ; attempt++) {
      const row = await this.principalRow(id);
      if (!row) throw new NitrogenError('NITROGEN_ERR_NOT_FOUND', `no principal '${id}'`);
      const next = { ...toPrincipal(row), ...patch };
      try {
        // Conditional on the version read, so a concurrent update is never overwritten unseen.
        await this.principals.client.updateEntity(principalEntity(next), 'Replace', { etag: row.etag });
        return next;
      } catch (err) {
        if (statusOf(err) === 404) throw new NitrogenError('NITROGEN_ERR_NOT_FOUND', `no principal '${id}'`);
        if (statusOf(err) !== 412 || attempt >= MAX_UPDATE_ATTEMPTS) throw storeError('update a principal', err);
      }
    }
  }

  async deletePrincipal(id: string): Promise<void> {
    if (!(await this.principalRow(id))) throw new NitrogenError('NITROGEN_ERR_NOT_FOUND', `no principal '${id}'`);
    // Grants first: a principal made later with the same id must not inherit them.
    const grants = [...(await this.listPermissions({ issuedTo: id })), ...(await this.listPermissions({ principalFor: id }))];
    await mapLimit(grants, IN_FLIGHT, (p) =>
      this.deletePermission(p.id).catch((err) => {
        if (!(err instanceof NitrogenError && err.code === 'NITROGEN_ERR_NOT_FOUND')) throw err;
      }),
    );
    await this.deleteRecordsOf(id);
    try {
      await this.principals.client.deleteEntity(escapeKey(id), '');
    } catch (err) {
      if (statusOf(err) === 404) throw new NitrogenError('NITROGEN_ERR_NOT_FOUND', `no principal '${id}'`);
      throw storeError('delete a principal', err);
    }
  }

  async listPrincipals(filter: PrincipalFilter, page: { limit: number; cursor?: string }): Promise<Page<PrincipalRecord>> {
    const after = page.cursor === undefined ? undefined : (decodeCursor(page.cursor, ['string'])[0] as string);
    const wanted = (r: PrincipalRecord) => (!filter.type || r.type === filter.type) && (!filter.tag || r.tags.includes(filter.tag));
    const found: PrincipalRecord[] = [];
    try {
      if (filter.ids) {
        const ids = [...new Set(filter.ids)].filter((id) => after === undefined || id > after).sort();
        for (let i = 0; i < ids.length && found.length <= page.limit; i += page.limit + 1) {
          const rows = await mapLimit(ids.slice(i, i + page.limit + 1), IN_FLIGHT, (id) => this.getPrincipal(id));
          found.push(...rows.filter((r): r is PrincipalRecord => r !== null && wanted(r)));
        }
      } else {
        const conditions: string[] = [];
        if (after !== undefined) conditions.push(odata`PartitionKey gt ${escapeKey(after)}`);
        if (filter.type) conditions.push(odata`type eq ${filter.type}`);
        const queryOptions = conditions.length ? { filter: conditions.join(' and ') } : {};
        const pages = this.principals.client.listEntities<PrincipalRow>({ queryOptions }).byPage({ maxPageSize: Math.min(1000, page.limit + 1) });
        for await (const rows of pages) {
          found.push(...rows.map(toPrincipal).filter(wanted));
          if (found.length > page.limit) break;
        }
      }
    } catch (err) {
      throw storeError('list principals', err);
    }
    const items = found.slice(0, page.limit);
    const last = items[items.length - 1];
    return { items, next: found.length > page.limit && last ? encodeCursor([last.id]) : null };
  }

  async touchPrincipals(ids: string[], at: string): Promise<void> {
    await mapLimit(ids, IN_FLIGHT, async (id) => {
      try {
        await this.principals.client.updateEntity({ partitionKey: escapeKey(id), rowKey: '', lastSeenAt: at }, 'Merge');
      } catch (err) {
        if (statusOf(err) !== 404) throw storeError('record lastSeenAt', err);
      }
    });
  }

  async createPermission(p: Permission): Promise<void> {
    const row: Entity = { partitionKey: PERMISSIONS, rowKey: escapeKey(p.id), authorized: p.authorized, priority: { value: p.priority, type: 'Double' }, createdAt: p.createdAt };
    if (p.issuedTo !== null) row.issuedTo = p.issuedTo;
    if (p.principalFor !== null) row.principalFor = p.principalFor;
    if (p.action !== null) row.action = p.action;
    if (p.expires !== undefined) row.expires = p.expires;
    try {
      await this.permissions.client.createEntity(row);
    } catch (err) {
      if (statusOf(err) === 409) throw new NitrogenError('NITROGEN_ERR_CONFLICT', `permission id taken: ${p.id}`, { cause: err });
      throw storeError('create a permission', err);
    }
  }

  async listPermissions(filter: PermissionFilter = {}): Promise<Permission[]> {
    let query = odata`PartitionKey eq ${PERMISSIONS}`;
    if (filter.issuedTo !== undefined) query += odata` and issuedTo eq ${filter.issuedTo}`;
    if (filter.principalFor !== undefined) query += odata` and principalFor eq ${filter.principalFor}`;
    const out: Permission[] = [];
    try {
      for await (const row of this.permissions.client.listEntities<PermissionRow>({ queryOptions: { filter: query } })) out.push(toPermission(row));
    } catch (err) {
      throw storeError('list permissions', err);
    }
    return out.sort(comparePermissions);
  }

  async deletePermission(id: string): Promise<void> {
    try {
      await this.permissions.client.deleteEntity(PERMISSIONS, escapeKey(id));
    } catch (err) {
      if (statusOf(err) === 404) throw new NitrogenError('NITROGEN_ERR_NOT_FOUND', `no permission '${id}'`);
      throw storeError('delete a permission', err);
    }
  }

  private async deleteRecordsOf(principal: string): Promise<void> {
    const keys: Array<{ partitionKey: string; rowKey: string }> = [];
    try {
      const rows = this.records.client.listEntities<RecordRow>({ queryOptions: { filter: odata`principal eq ${principal}`, select: ['PartitionKey', 'RowKey'] } });
      for await (const row of rows) keys.push({ partitionKey: row.partitionKey, rowKey: row.rowKey });
    } catch (err) {
      throw storeError('list records', err);
    }
    await deleteAll(this.records.client, keys, 'delete records');
  }

  async putRecords(records: RegistryRecord[]): Promise<void> {
    await upsertAll(this.records.client, records.map(recordEntity), 'write records');
  }

  async createRecord(r: RegistryRecord): Promise<void> {
    try {
      await this.records.client.createEntity(recordEntity(r));
    } catch (err) {
      if (statusOf(err) === 409) throw new NitrogenError('NITROGEN_ERR_CONFLICT', `${r.kind} '${r.key}' exists`, { cause: err });
      throw storeError('create a record', err);
    }
  }

  async getRecord(kind: string, key: string): Promise<RegistryRecord | null> {
    const row = await getOrNull<RecordRow>(this.records.client, escapeKey(kind), escapeKey(key), 'read a record');
    return row ? toRecord(row) : null;
  }

  /** Ordered by the escaped key: the key's own order for keys of letters, digits and `._:~-`. */
  async listRecords(kind: string, filter: { principal?: string }, page: { limit: number; cursor?: string }): Promise<Page<RegistryRecord>> {
    let query = odata`PartitionKey eq ${escapeKey(kind)}`;
    if (page.cursor !== undefined) query += odata` and RowKey gt ${escapeKey(decodeCursor(page.cursor, ['string'])[0] as string)}`;
    if (filter.principal !== undefined) query += odata` and principal eq ${filter.principal}`;
    const found: RegistryRecord[] = [];
    try {
      for await (const rows of this.records.client.listEntities<RecordRow>({ queryOptions: { filter: query } }).byPage({ maxPageSize: Math.min(1000, page.limit + 1) })) {
        found.push(...rows.map(toRecord));
        if (found.length > page.limit) break;
      }
    } catch (err) {
      throw storeError('list records', err);
    }
    const items = found.slice(0, page.limit);
    const last = items[items.length - 1];
    return { items, next: found.length > page.limit && last ? encodeCursor([last.key]) : null };
  }

  async deleteRecord(kind: string, key: string): Promise<boolean> {
    try {
      await this.records.client.deleteEntity(escapeKey(kind), escapeKey(key));
      return true;
    } catch (err) {
      if (statusOf(err) === 404) return false;
      throw storeError('delete a record', err);
    }
  }
}
