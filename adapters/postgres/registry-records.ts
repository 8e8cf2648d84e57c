import type pg from 'pg';
import { decodeCursor, encodeCursor } from '../../core/cursor.js';
import { NitrogenError } from '../../core/errors.js';
import type { Page } from '../../core/ports/lifecycle.js';
import type { RegistryRecord } from '../../core/ports/registry.js';
import { isRetryable, sqlState, storeError, UNIQUE_VIOLATION } from './connection.js';

interface RecordRow {
  kind: string;
  key: string;
  principal: string;
  value: string;
}

function toRecord(row: RecordRow): RegistryRecord {
  return { kind: row.kind, key: row.key, principal: row.principal, value: JSON.parse(row.value) as unknown };
}

/** PostgreSQL text cannot hold U+0000: refused as bad input rather than failing in the driver. */
function checkNames(records: readonly RegistryRecord[]): void {
  for (const r of records) {
    for (const [field, value] of [
      ['kind', r.kind],
      ['key', r.key],
      ['principal', r.principal],
    ] as const) {
      if (value.includes('\u0000')) throw new NitrogenError('NITROGEN_ERR_VALIDATION', `record ${field}: must not contain the character U+0000`, { details: { field } });
    }
  }
}

/**
 * The Registry's records (core/ports/registry.ts) in the `records` table: one row per kind and
 * key, the value as its JSON text (JSON.stringify escapes U+0000, which text cannot hold). A
 * principal's records are deleted with it, in PostgresRegistry.deletePrincipal's statement.
 */
export class PostgresRecords {
  constructor(
    private readonly db: () => pg.Pool,
    private readonly schema: string,
  ) {}

  /** One statement per batch. Rows are written in (kind, key) order, so two instances writing overlapping batches do not deadlock. */
  async put(records: RegistryRecord[]): Promise<void> {
    checkNames(records);
    // The last of two writes to one kind and key wins, as when written one by one; one statement may not touch a row twice.
    const latest = new Map<string, RegistryRecord>();
    for (const r of records) latest.set(JSON.stringify([r.kind, r.key]), r);
    const rows = [...latest.values()].sort((a, b) => (a.kind === b.kind ? compare(a.key, b.key) : compare(a.kind, b.kind)));
    const sql = `INSERT INTO ${this.schema}.records (kind, key, principal, value)
      SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
      ON CONFLICT (kind, key) DO UPDATE SET principal = EXCLUDED.principal, value = EXCLUDED.value`;
    const values = [rows.map((r) => r.kind), rows.map((r) => r.key), rows.map((r) => r.principal), rows.map((r) => JSON.stringify(r.value))];
    for (let attempt = 1; ; attempt++) {
      try {
        await this.db().query(sql, values);
        return;
      } catch (err) {
        if (attempt < 3 && isRetryable(err)) continue;
        throw storeError('write records', err);
      }
    }
  }

  async create(r: RegistryRecord): Promise<void> {
    checkNames([r]);
    try {
      await this.db().query(`INSERT INTO ${this.schema}.records (kind, key, principal, value) VALUES ($1, $2, $3, $4)`, [r.kind, r.key, r.principal, JSON.stringify(r.value)]);
    } catch (err) {
      if (sqlState(err) === UNIQUE_VIOLATION) throw new NitrogenError('NITROGEN_ERR_CONFLICT', `${r.kind} '${r.key}' exists`, { cause: err });
      throw storeError('create a record', err);
    }
  }

  async get(kind: string, key: string): Promise<RegistryRecord | null> {
    if (kind.includes('\u0000') || key.includes('\u0000')) return null;
    try {
      const { rows } = await this.db().query<RecordRow>(`SELECT * FROM ${this.schema}.records WHERE kind = $1 AND key = $2`, [kind, key]);
      return rows[0] ? toRecord(rows[0]) : null;
    } catch (err) {
      throw storeError('read a record', err);
    }
  }

  async list(kind: string, filter: { principal?: string }, page: { limit: number; cursor?: string }): Promise<Page<RegistryRecord>> {
    if (kind.includes('\u0000') || filter.principal?.includes('\u0000')) return { items: [], next: null };
    const values: unknown[] = [kind];
    const where = ['kind = $1'];
    if (page.cursor !== undefined) where.push(`key > $${values.push(decodeCursor(page.cursor, ['string'])[0])}`);
    if (filter.principal !== undefined) where.push(`principal = $${values.push(filter.principal)}`);
    try {
      const { rows } = await this.db().query<RecordRow>(`SELECT * FROM ${this.schema}.records WHERE ${where.join(' AND ')} ORDER BY key LIMIT $${values.push(page.limit + 1)}`, values);
      const items = rows.slice(0, page.limit).map(toRecord);
      const last = items[items.length - 1];
      return { items, next: rows.length > page.limit && last ? encodeCursor([last.key]) : null };
    } catch (err) {
      throw storeError('list records', err);
    }
  }

  /** One DELETE: of two callers deleting the same record, PostgreSQL lets exactly one count the row. */
  async delete(kind: string, key: string): Promise<boolean> {
    if (kind.includes('\u0000') || key.includes('\u0000')) return false;
    try {
      return ((await this.db().query(`DELETE FROM ${this.schema}.records WHERE kind = $1 AND key = $2`, [kind, key])).rowCount ?? 0) > 0;
    } catch (err) {
      throw storeError('delete a record', err);
    }
  }
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
