import type pg from 'pg';
import { decodeCursor, encodeCursor } from '../../core/cursor.js';
import { NitrogenError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { comparePermissions } from '../../core/permissions.js';
import type { Page } from '../../core/ports/lifecycle.js';
import type { Action, Permission, PrincipalRecord, PrincipalType } from '../../core/ports/principal.js';
import type { PermissionFilter, PrincipalFilter, PrincipalPatch, Registry, RegistryRecord } from '../../core/ports/registry.js';
import { ident, isRetryable, type PostgresConnectionOptions, sqlState, storeError, transaction, UNIQUE_VIOLATION } from './connection.js';
import { PostgresRecords } from './registry-records.js';
import { openMigrated } from './schema.js';

interface PrincipalRow {
  id: string;
  type: PrincipalType;
  name: string | null;
  tags: string[];
  created_at: Date;
  last_seen_at: Date | null;
  enabled: boolean;
  secret_hash: string | null;
}

interface PermissionRow {
  id: string;
  issued_to: string | null;
  principal_for: string | null;
  action: Action | null;
  authorized: boolean;
  priority: string;
  expires: Date | null;
  created_at: Date;
}

function toPrincipal(row: PrincipalRow): PrincipalRecord {
  const record: PrincipalRecord = { id: row.id, type: row.type, tags: row.tags, createdAt: row.created_at.toISOString(), enabled: row.enabled };
  if (row.name !== null) record.name = row.name;
  if (row.last_seen_at !== null) record.lastSeenAt = row.last_seen_at.toISOString();
  if (row.secret_hash !== null) record.secretHash = row.secret_hash;
  return record;
}

function toPermission(row: PermissionRow): Permission {
  const permission: Permission = {
    id: row.id,
    issuedTo: row.issued_to,
    principalFor: row.principal_for,
    action: row.action,
    authorized: row.authorized,
    priority: Number(row.priority),
    createdAt: row.created_at.toISOString(),
  };
  if (row.expires !== null) permission.expires = row.expires.toISOString();
  return permission;
}

/** PostgreSQL text cannot hold U+0000: refused as bad input rather than failing in the driver. */
function checkText(field: string, values: (string | undefined | null)[]): void {
  if (values.some((v) => typeof v === 'string' && v.includes('\u0000'))) {
    throw new NitrogenError('NITROGEN_ERR_VALIDATION', `${field}: must not contain the character U+0000`, { details: { field } });
  }
}

const COLUMNS: Record<keyof PrincipalPatch, string> = { name: 'name', tags: 'tags', enabled: 'enabled', secretHash: 'secret_hash', lastSeenAt: 'last_seen_at' };

/**
 * The Registry on PostgreSQL: `principals`, `permissions` and `records`, one row each. Every write
 * is one statement or one transaction, so instances sharing the database never lose an update
 * and a batch of principals is created whole or not at all.
 */
export class PostgresRegistry implements Registry {
  private pool?: pg.Pool;
  private readonly schema: string;
  private readonly records: PostgresRecords;

  constructor(
    private readonly options: PostgresConnectionOptions,
    private readonly logger?: Logger,
  ) {
    this.schema = ident(options.schema);
    this.records = new PostgresRecords(() => this.db, this.schema);
  }

  private get db(): pg.Pool {
    if (!this.pool) throw storeError('serve a request', new Error('the registry is not started'));
    return this.pool;
  }

  async start(): Promise<void> {
    this.pool = await openMigrated(this.options, 'registry', this.logger);
  }

  async stop(): Promise<void> {
    const pool = this.pool;
    this.pool = undefined;
    await pool?.end();
  }

  async createPrincipals(records: PrincipalRecord[]): Promise<void> {
    checkText(
      'name',
      records.map((r) => r.name),
    );
    checkText(
      'tags',
      records.flatMap((r) => r.tags),
    );
    try {
      await transaction(this.db, async (client) => {
        const { rows } = await client.query<{ id: string }>(
          `INSERT INTO ${this.schema}.principals (id, type, name, tags, created_at, last_seen_at, enabled, secret_hash)
           SELECT id, type, name, ARRAY(SELECT json_array_elements_text(tags::json)), created_at::timestamptz, last_seen_at::timestamptz, enabled, secret_hash
           FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::boolean[], $8::text[]) AS p(id, type, name, tags, created_at, last_seen_at, enabled, secret_hash)
           ON CONFLICT (id) DO NOTHING RETURNING id`,
          [
            records.map((r) => r.id),
            records.map((r) => r.type),
            records.map((r) => r.name ?? null),
            records.map((r) => JSON.stringify(r.tags)),
            records.map((r) => r.createdAt),
            records.map((r) => r.lastSeenAt ?? null),
            records.map((r) => r.enabled),
            records.map((r) => r.secretHash ?? null),
          ],
        );
        if (rows.length === records.length) return;
        // All or nothing: the transaction rolls back what it inserted. A repeated id is taken by its first copy.
        const inserted = new Set(rows.map((r) => r.id));
        const ids = records.map((r) => r.id);
        const taken = [...new Set(ids.filter((id, i) => !inserted.has(id) || ids.indexOf(id) !== i))];
        throw new NitrogenError('NITROGEN_ERR_CONFLICT', `principal id taken: ${taken.join(', ')}`, { details: { ids: taken } });
      });
    } catch (err) {
      throw storeError('create principals', err);
    }
  }

  async getPrincipal(id: string): Promise<PrincipalRecord | null> {
    try {
      const { rows } = await this.db.query<PrincipalRow>(`SELECT * FROM ${this.schema}.principals WHERE id = $1`, [id]);
      return rows[0] ? toPrincipal(rows[0]) : null;
    } catch (err) {
      throw storeError('read a principal', err);
    }
  }

  async updatePrincipal(id: string, patch: PrincipalPatch): Promise<PrincipalRecord> {
    checkText('name', [patch.name]);
    checkText('tags', patch.tags ?? []);
    const values: unknown[] = [id];
    // An optional field given as undefined is removed (set to null), as in the other registries;
    // tags and enabled always have a value.
    const keys = (Object.keys(patch) as (keyof PrincipalPatch)[]).filter((k) => k in COLUMNS && (patch[k] !== undefined || (k !== 'tags' && k !== 'enabled')));
    const sets = keys.map((k) => `${COLUMNS[k]} = $${values.push(patch[k] ?? null)}`);
    let rows: PrincipalRow[];
    try {
      rows = (await this.db.query<PrincipalRow>(sets.length ? `UPDATE ${this.schema}.principals SET ${sets.join(', ')} WHERE id = $1 RETURNING *` : `SELECT * FROM ${this.schema}.principals WHERE id = $1`, values)).rows;
    } catch (err) {
      throw storeError('update a principal', err);
    }
    if (!rows[0]) throw new NitrogenError('NITROGEN_ERR_NOT_FOUND', `no principal '${id}'`);
    return toPrincipal(rows[0]);
  }

  async deletePrincipal(id: string): Promise<void> {
    let deleted: number;
    try {
      // One statement: the grants issued to or for it and its records (certificates, API keys…)
      // go with it, so a principal made later with the same id never inherits them.
      const { rows } = await this.db.query<{ n: string }>(
        `WITH gone AS (DELETE FROM ${this.schema}.principals WHERE id = $1 RETURNING id),
         grants AS (DELETE FROM ${this.schema}.permissions WHERE (issued_to = $1 OR principal_for = $1) AND EXISTS (SELECT 1 FROM gone)),
         records AS (DELETE FROM ${this.schema}.records WHERE principal = $1 AND EXISTS (SELECT 1 FROM gone))
         SELECT count(*) AS n FROM gone`,
        [id],
      );
      deleted = Number(rows[0]!.n);
    } catch (err) {
      throw storeError('delete a principal', err);
    }
    if (deleted === 0) throw new NitrogenError('NITROGEN_ERR_NOT_FOUND', `no principal '${id}'`);
  }

  async listPrincipals(filter: PrincipalFilter, page: { limit: number; cursor?: string }): Promise<Page<PrincipalRecord>> {
    const values: unknown[] = [];
    const where: string[] = [];
    if (page.cursor !== undefined) where.push(`id > $${values.push(decodeCursor(page.cursor, ['string'])[0])}`);
    if (filter.ids) where.push(`id = ANY($${values.push(filter.ids)}::text[])`);
    if (filter.type) where.push(`type = $${values.push(filter.type)}`);
    if (filter.tag !== undefined) where.push(`tags @> ARRAY[$${values.push(filter.tag)}::text]`);
    try {
      const { rows } = await this.db.query<PrincipalRow>(`SELECT * FROM ${this.schema}.principals ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id LIMIT $${values.push(page.limit + 1)}`, values);
      const items = rows.slice(0, page.limit).map(toPrincipal);
      const last = items[items.length - 1];
      return { items, next: rows.length > page.limit && last ? encodeCursor([last.id]) : null };
    } catch (err) {
      throw storeError('list principals', err);
    }
  }

  async touchPrincipals(ids: string[], at: string): Promise<void> {
    // Rows are locked in id order, so two instances touching overlapping sets do not deadlock.
    const sql = `UPDATE ${this.schema}.principals p SET last_seen_at = $2::timestamptz
      FROM (SELECT id FROM ${this.schema}.principals WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE) t WHERE p.id = t.id`;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.db.query(sql, [ids, at]);
        return;
      } catch (err) {
        if (attempt < 3 && isRetryable(err)) continue;
        throw storeError('record lastSeenAt', err);
      }
    }
  }

  async createPermission(p: Permission): Promise<void> {
    try {
      await this.db.query(
        `INSERT INTO ${this.schema}.permissions (id, issued_to, principal_for, action, authorized, priority, expires, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7::timestamptz, $8::timestamptz)`,
        [p.id, p.issuedTo, p.principalFor, p.action, p.authorized, p.priority, p.expires ?? null, p.createdAt],
      );
    } catch (err) {
      if (sqlState(err) === UNIQUE_VIOLATION) throw new NitrogenError('NITROGEN_ERR_CONFLICT', `permission id taken: ${p.id}`, { cause: err });
      throw storeError('create a permission', err);
    }
  }

  async listPermissions(filter: PermissionFilter = {}): Promise<Permission[]> {
    const values: unknown[] = [];
    const where: string[] = [];
    if (filter.issuedTo !== undefined) where.push(`issued_to = $${values.push(filter.issuedTo)}`);
    if (filter.principalFor !== undefined) where.push(`principal_for = $${values.push(filter.principalFor)}`);
    try {
      const { rows } = await this.db.query<PermissionRow>(`SELECT * FROM ${this.schema}.permissions ${where.length ? `WHERE ${where.join(' AND ')}` : ''}`, values);
      // Sorted here, by the same comparison the core evaluates with.
      return rows.map(toPermission).sort(comparePermissions);
    } catch (err) {
      throw storeError('list permissions', err);
    }
  }

  async deletePermission(id: string): Promise<void> {
    let deleted: number;
    try {
      deleted = (await this.db.query(`DELETE FROM ${this.schema}.permissions WHERE id = $1`, [id])).rowCount ?? 0;
    } catch (err) {
      throw storeError('delete a permission', err);
    }
    if (deleted === 0) throw new NitrogenError('NITROGEN_ERR_NOT_FOUND', `no permission '${id}'`);
  }

  putRecords(records: RegistryRecord[]): Promise<void> {
    return this.records.put(records);
  }

  createRecord(record: RegistryRecord): Promise<void> {
    return this.records.create(record);
  }

  getRecord(kind: string, key: string): Promise<RegistryRecord | null> {
    return this.records.get(kind, key);
  }

  listRecords(kind: string, filter: { principal?: string }, page: { limit: number; cursor?: string }): Promise<Page<RegistryRecord>> {
    return this.records.list(kind, filter, page);
  }

  deleteRecord(kind: string, key: string): Promise<boolean> {
    return this.records.delete(kind, key);
  }
}
