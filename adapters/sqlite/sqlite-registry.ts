import Database from 'better-sqlite3';
import { chmodSync, closeSync, existsSync, openSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { decodeCursor, encodeCursor } from '../../core/cursor.js';
import { NitrogenError } from '../../core/errors.js';
import type { Page } from '../../core/ports/lifecycle.js';
import type { Action, Permission, PrincipalRecord, PrincipalType } from '../../core/ports/principal.js';
import type { PermissionFilter, PrincipalFilter, PrincipalPatch, Registry, RegistryRecord } from '../../core/ports/registry.js';
import { REGISTRY_SCHEMA, configureDurable } from './schema.js';

export interface SqliteRegistryOptions {
  /** Database file: an absolute path, or one relative to the data directory. */
  file: string;
}

interface PrincipalRow {
  id: string;
  type: string;
  name: string | null;
  tags: string;
  created_at: string;
  last_seen_at: string | null;
  enabled: number;
  secret_hash: string | null;
}

interface RecordRow {
  kind: string;
  key: string;
  principal: string;
  value: string;
}

function toRecord(row: RecordRow): RegistryRecord {
  return { kind: row.kind, key: row.key, principal: row.principal, value: JSON.parse(row.value) as unknown };
}

interface PermissionRow {
  id: string;
  issued_to: string | null;
  principal_for: string | null;
  action: string | null;
  authorized: number;
  priority: number;
  expires: string | null;
  created_at: string;
}

function toPrincipal(row: PrincipalRow): PrincipalRecord {
  const record: PrincipalRecord = { id: row.id, type: row.type as PrincipalType, tags: JSON.parse(row.tags) as string[], createdAt: row.created_at, enabled: row.enabled === 1 };
  if (row.name !== null) record.name = row.name;
  if (row.last_seen_at !== null) record.lastSeenAt = row.last_seen_at;
  if (row.secret_hash !== null) record.secretHash = row.secret_hash;
  return record;
}

function toPermission(row: PermissionRow): Permission {
  const permission: Permission = {
    id: row.id,
    issuedTo: row.issued_to,
    principalFor: row.principal_for,
    action: row.action as Action | null,
    authorized: row.authorized === 1,
    priority: row.priority,
    createdAt: row.created_at,
  };
  if (row.expires !== null) permission.expires = row.expires;
  return permission;
}

/**
 * The registry holds secret digests: its files are for this user alone (0600), whatever the
 * umask and the data directory's mode. A new database file is made empty with that mode first,
 * since SQLite gives its -wal and -shm files the mode of the database file; files made by an
 * earlier version are tightened.
 */
function privateFiles(file: string): void {
  if (!existsSync(file)) closeSync(openSync(file, 'wx', 0o600));
  for (const path of [file, `${file}-wal`, `${file}-shm`]) if (existsSync(path) && (statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600);
}

/**
 * The embedded default Registry on SQLite, on the main thread: registry writes are rare
 * (registration, permission changes) next to message writes, and reads are index lookups.
 */
export class SqliteRegistry implements Registry {
  private db!: Database.Database;
  private sql!: ReturnType<SqliteRegistry['prepare']>;
  private readonly file: string;

  constructor(dataDir: string, options: SqliteRegistryOptions) {
    this.file = resolve(dataDir, options.file);
  }

  async start(): Promise<void> {
    privateFiles(this.file);
    this.db = new Database(this.file);
    configureDurable(this.db);
    this.db.exec(REGISTRY_SCHEMA);
    this.sql = this.prepare(this.db);
  }

  async stop(): Promise<void> {
    if (this.db?.open) this.db.close();
  }

  private prepare(db: Database.Database) {
    return {
      taken: db.prepare<[string], { id: string }>('SELECT id FROM principals WHERE id IN (SELECT value FROM json_each(?))'),
      insert: db.prepare('INSERT INTO principals (id, type, name, tags, created_at, last_seen_at, enabled, secret_hash) VALUES (@id, @type, @name, @tags, @created_at, @last_seen_at, @enabled, @secret_hash)'),
      get: db.prepare<[string], PrincipalRow>('SELECT * FROM principals WHERE id = ?'),
      update: db.prepare('UPDATE principals SET name = @name, tags = @tags, enabled = @enabled, secret_hash = @secret_hash, last_seen_at = @last_seen_at WHERE id = @id'),
      delete: db.prepare<[string]>('DELETE FROM principals WHERE id = ?'),
      deleteGrants: db.prepare<[string, string]>('DELETE FROM permissions WHERE issued_to = ? OR principal_for = ?'),
      touch: db.prepare<[string, string]>('UPDATE principals SET last_seen_at = ? WHERE id = ?'),
      insertPermission: db.prepare(
        'INSERT INTO permissions (id, issued_to, principal_for, action, authorized, priority, expires, created_at) VALUES (@id, @issued_to, @principal_for, @action, @authorized, @priority, @expires, @created_at)',
      ),
      deletePermission: db.prepare<[string]>('DELETE FROM permissions WHERE id = ?'),
      putRecord: db.prepare<[string, string, string, string]>('INSERT OR REPLACE INTO records (kind, key, principal, value) VALUES (?, ?, ?, ?)'),
      createRecord: db.prepare<[string, string, string, string]>('INSERT INTO records (kind, key, principal, value) VALUES (?, ?, ?, ?)'),
      getRecord: db.prepare<[string, string], RecordRow>('SELECT * FROM records WHERE kind = ? AND key = ?'),
      deleteRecord: db.prepare<[string, string]>('DELETE FROM records WHERE kind = ? AND key = ?'),
      deleteRecordsOf: db.prepare<[string]>('DELETE FROM records WHERE principal = ?'),
    };
  }

  private fail(err: unknown, what: string): never {
    if (err instanceof NitrogenError) throw err;
    throw new NitrogenError('NITROGEN_ERR_STORE', `SQLite registry failed to ${what}`, { cause: err });
  }

  async createPrincipals(records: PrincipalRecord[]): Promise<void> {
    const ids = records.map((r) => r.id);
    const taken = new Set(this.sql.taken.all(JSON.stringify(ids)).map((row) => row.id));
    const seen = new Set<string>();
    for (const id of ids) {
      if (seen.has(id)) taken.add(id);
      seen.add(id);
    }
    if (taken.size > 0) throw new NitrogenError('NITROGEN_ERR_CONFLICT', `principal id taken: ${[...taken].join(', ')}`, { details: { ids: [...taken] } });
    try {
      this.db.transaction(() => {
        for (const r of records) {
          this.sql.insert.run({
            id: r.id,
            type: r.type,
            name: r.name ?? null,
            tags: JSON.stringify(r.tags),
            created_at: r.createdAt,
            last_seen_at: r.lastSeenAt ?? null,
            enabled: r.enabled ? 1 : 0,
            secret_hash: r.secretHash ?? null,
          });
        }
      })();
    } catch (err) {
      this.fail(err, 'create principals');
    }
  }

  async getPrincipal(id: string): Promise<PrincipalRecord | null> {
    const row = this.sql.get.get(id);
    return row ? toPrincipal(row) : null;
  }

  async updatePrincipal(id: string, patch: PrincipalPatch): Promise<PrincipalRecord> {
    const current = await this.getPrincipal(id);
    if (!current) throw new NitrogenError('NITROGEN_ERR_NOT_FOUND', `no principal '${id}'`);
    const next = { ...current, ...patch };
    try {
      this.sql.update.run({
        id,
        name: next.name ?? null,
        tags: JSON.stringify(next.tags),
        enabled: next.enabled ? 1 : 0,
        secret_hash: next.secretHash ?? null,
        last_seen_at: next.lastSeenAt ?? null,
      });
    } catch (err) {
      this.fail(err, 'update a principal');
    }
    return next;
  }

  async deletePrincipal(id: string): Promise<void> {
    const deleted = this.db.transaction(() => {
      this.sql.deleteGrants.run(id, id);
      this.sql.deleteRecordsOf.run(id);
      return this.sql.delete.run(id).changes;
    })();
    if (deleted === 0) throw new NitrogenError('NITROGEN_ERR_NOT_FOUND', `no principal '${id}'`);
  }

  async listPrincipals(filter: PrincipalFilter, page: { limit: number; cursor?: string }): Promise<Page<PrincipalRecord>> {
    const where: string[] = [];
    const params: (string | number)[] = [];
    if (page.cursor) {
      where.push('id > ?');
      params.push(decodeCursor(page.cursor, ['string'])[0] as string);
    }
    if (filter.type) {
      where.push('type = ?');
      params.push(filter.type);
    }
    if (filter.tag) {
      where.push('EXISTS (SELECT 1 FROM json_each(principals.tags) WHERE value = ?)');
      params.push(filter.tag);
    }
    if (filter.ids) {
      where.push('id IN (SELECT value FROM json_each(?))');
      params.push(JSON.stringify(filter.ids));
    }
    const sql = `SELECT * FROM principals ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY id LIMIT ?`;
    const rows = this.db.prepare<(string | number)[], PrincipalRow>(sql).all(...params, page.limit + 1);
    const items = rows.slice(0, page.limit).map(toPrincipal);
    const last = items[items.length - 1];
    return { items, next: rows.length > page.limit && last ? encodeCursor([last.id]) : null };
  }

  async touchPrincipals(ids: string[], at: string): Promise<void> {
    this.db.transaction(() => {
      for (const id of ids) this.sql.touch.run(at, id);
    })();
  }

  async createPermission(p: Permission): Promise<void> {
    try {
      this.sql.insertPermission.run({
        id: p.id,
        issued_to: p.issuedTo,
        principal_for: p.principalFor,
        action: p.action,
        authorized: p.authorized ? 1 : 0,
        priority: p.priority,
        expires: p.expires ?? null,
        created_at: p.createdAt,
      });
    } catch (err) {
      if ((err as { code?: string }).code?.startsWith('SQLITE_CONSTRAINT')) {
        throw new NitrogenError('NITROGEN_ERR_CONFLICT', `permission id taken: ${p.id}`, { cause: err });
      }
      this.fail(err, 'create a permission');
    }
  }

  async listPermissions(filter: PermissionFilter = {}): Promise<Permission[]> {
    const where: string[] = [];
    const params: string[] = [];
    if (filter.issuedTo !== undefined) {
      where.push('issued_to = ?');
      params.push(filter.issuedTo);
    }
    if (filter.principalFor !== undefined) {
      where.push('principal_for = ?');
      params.push(filter.principalFor);
    }
    const sql = `SELECT * FROM permissions ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY priority, created_at, id`;
    return this.db
      .prepare<string[], PermissionRow>(sql)
      .all(...params)
      .map(toPermission);
  }

  async deletePermission(id: string): Promise<void> {
    if (this.sql.deletePermission.run(id).changes === 0) throw new NitrogenError('NITROGEN_ERR_NOT_FOUND', `no permission '${id}'`);
  }

  async putRecords(records: RegistryRecord[]): Promise<void> {
    try {
      this.db.transaction(() => {
        for (const r of records) this.sql.putRecord.run(r.kind, r.key, r.principal, JSON.stringify(r.value));
      })();
    } catch (err) {
      this.fail(err, 'write records');
    }
  }

  async createRecord(r: RegistryRecord): Promise<void> {
    try {
      this.sql.createRecord.run(r.kind, r.key, r.principal, JSON.stringify(r.value));
    } catch (err) {
      if ((err as { code?: string }).code?.startsWith('SQLITE_CONSTRAINT')) throw new NitrogenError('NITROGEN_ERR_CONFLICT', `${r.kind} '${r.key}' exists`, { cause: err });
      this.fail(err, 'create a record');
    }
  }

  async getRecord(kind: string, key: string): Promise<RegistryRecord | null> {
    const row = this.sql.getRecord.get(kind, key);
    return row ? toRecord(row) : null;
  }

  async listRecords(kind: string, filter: { principal?: string }, page: { limit: number; cursor?: string }): Promise<Page<RegistryRecord>> {
    const where = ['kind = ?'];
    const params: (string | number)[] = [kind];
    if (page.cursor) {
      where.push('key > ?');
      params.push(decodeCursor(page.cursor, ['string'])[0] as string);
    }
    if (filter.principal !== undefined) {
      where.push('principal = ?');
      params.push(filter.principal);
    }
    const rows = this.db.prepare<(string | number)[], RecordRow>(`SELECT * FROM records WHERE ${where.join(' AND ')} ORDER BY key LIMIT ?`).all(...params, page.limit + 1);
    const items = rows.slice(0, page.limit).map(toRecord);
    const last = items[items.length - 1];
    return { items, next: rows.length > page.limit && last ? encodeCursor([last.key]) : null };
  }

  async deleteRecord(kind: string, key: string): Promise<boolean> {
    return this.sql.deleteRecord.run(kind, key).changes > 0;
  }
}
