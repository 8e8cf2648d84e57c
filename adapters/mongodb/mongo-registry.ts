import type { Collection, Filter, MongoClient } from 'mongodb';
import { decodeCursor, encodeCursor } from '../../core/cursor.js';
import { NitrogenError } from '../../core/errors.js';
import { comparePermissions } from '../../core/permissions.js';
import type { Page } from '../../core/ports/lifecycle.js';
import type { Permission, PrincipalRecord } from '../../core/ports/principal.js';
import type { PermissionFilter, PrincipalFilter, PrincipalPatch, Registry, RegistryRecord } from '../../core/ports/registry.js';
import { connect, duplicatesOf, isDuplicateKey, type MongoConnectionOptions, storeError } from './connection.js';

type PrincipalDoc = Omit<PrincipalRecord, 'id'> & { _id: string };
type PermissionDoc = Omit<Permission, 'id'> & { _id: string };
/** A record's value is kept as JSON text: a twin's keys may hold `$` and `.`, which field names may not. */
interface RecordDoc {
  kind: string;
  key: string;
  principal: string;
  value: string;
}

function toRecord(doc: RecordDoc): RegistryRecord {
  return { kind: doc.kind, key: doc.key, principal: doc.principal, value: JSON.parse(doc.value) as unknown };
}

function toPrincipal({ _id, ...rest }: PrincipalDoc): PrincipalRecord {
  return { id: _id, ...rest };
}

function toPermission({ _id, ...rest }: PermissionDoc): Permission {
  return { id: _id, ...rest };
}

/** Drops undefined fields: the driver would store them as null, and the port has none. */
function defined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

/**
 * The Registry on MongoDB: `principals` and `permissions`, `_id` = the record's id.
 * Updates are single-document atomic operators, so concurrent instances never lose one.
 * `createPrincipals` refuses a batch with a taken id before it writes; if another instance
 * takes an id in the meantime, it deletes what it inserted of the batch and refuses it.
 */
export class MongoRegistry implements Registry {
  private client?: MongoClient;
  private principals!: Collection<PrincipalDoc>;
  private permissions!: Collection<PermissionDoc>;
  private records!: Collection<RecordDoc>;

  constructor(private readonly options: MongoConnectionOptions) {}

  async start(): Promise<void> {
    const { client, db } = await connect(this.options, 'mongodb registry');
    this.client = client;
    this.principals = db.collection('principals');
    this.permissions = db.collection('permissions');
    this.records = db.collection('records');
    try {
      await this.records.createIndexes([
        { key: { kind: 1, key: 1 }, name: 'kind_key', unique: true },
        { key: { principal: 1 }, name: 'principal' },
      ]);
      await this.principals.createIndexes([
        { key: { type: 1, _id: 1 }, name: 'type_id' },
        { key: { tags: 1, _id: 1 }, name: 'tags_id' },
      ]);
      await this.permissions.createIndexes([
        { key: { issuedTo: 1 }, name: 'issuedTo' },
        { key: { principalFor: 1 }, name: 'principalFor' },
      ]);
    } catch (err) {
      throw storeError('create indexes', err);
    }
  }

  async stop(): Promise<void> {
    await this.client?.close();
    this.client = undefined;
  }

  async createPrincipals(records: PrincipalRecord[]): Promise<void> {
    const ids = records.map((r) => r.id);
    const taken = new Set(ids.filter((id, i) => ids.indexOf(id) !== i));
    try {
      for (const doc of await this.principals.find({ _id: { $in: ids } }, { projection: { _id: 1 } }).toArray()) taken.add(doc._id);
    } catch (err) {
      throw storeError('read principals', err);
    }
    if (taken.size === 0) {
      try {
        await this.principals.insertMany(
          records.map(({ id, ...rest }) => defined({ _id: id, ...rest })),
          { ordered: false },
        );
        return;
      } catch (err) {
        for (const i of duplicatesOf(err, 'create principals')) taken.add(ids[i]!);
        await this.principals.deleteMany({ _id: { $in: ids.filter((id) => !taken.has(id)) } }).catch(() => {});
      }
    }
    throw new NitrogenError('NITROGEN_ERR_CONFLICT', `principal id taken: ${[...taken].join(', ')}`, { details: { ids: [...taken] } });
  }

  async getPrincipal(id: string): Promise<PrincipalRecord | null> {
    try {
      const doc = await this.principals.findOne({ _id: id });
      return doc ? toPrincipal(doc) : null;
    } catch (err) {
      throw storeError('read a principal', err);
    }
  }

  async updatePrincipal(id: string, patch: PrincipalPatch): Promise<PrincipalRecord> {
    const set = defined(patch);
    const unset = Object.fromEntries(
      Object.keys(patch)
        .filter((k) => !(k in set))
        .map((k) => [k, '' as const]),
    );
    const update = { ...(Object.keys(set).length ? { $set: set } : {}), ...(Object.keys(unset).length ? { $unset: unset } : {}) };
    let doc: PrincipalDoc | null;
    try {
      doc = Object.keys(update).length ? await this.principals.findOneAndUpdate({ _id: id }, update, { returnDocument: 'after' }) : await this.principals.findOne({ _id: id });
    } catch (err) {
      throw storeError('update a principal', err);
    }
    if (!doc) throw new NitrogenError('NITROGEN_ERR_NOT_FOUND', `no principal '${id}'`);
    return toPrincipal(doc);
  }

  async deletePrincipal(id: string): Promise<void> {
    try {
      if (!(await this.principals.findOne({ _id: id }, { projection: { _id: 1 } }))) throw new NitrogenError('NITROGEN_ERR_NOT_FOUND', `no principal '${id}'`);
      // Grants first: a principal made later with the same id must not inherit them.
      await this.permissions.deleteMany({ $or: [{ issuedTo: id }, { principalFor: id }] });
      await this.records.deleteMany({ principal: id });
      if ((await this.principals.deleteOne({ _id: id })).deletedCount === 0) throw new NitrogenError('NITROGEN_ERR_NOT_FOUND', `no principal '${id}'`);
    } catch (err) {
      throw storeError('delete a principal', err);
    }
  }

  async listPrincipals(filter: PrincipalFilter, page: { limit: number; cursor?: string }): Promise<Page<PrincipalRecord>> {
    const and: Filter<PrincipalDoc>[] = [];
    if (page.cursor !== undefined) and.push({ _id: { $gt: decodeCursor(page.cursor, ['string'])[0] as string } });
    if (filter.ids) and.push({ _id: { $in: filter.ids } });
    if (filter.type) and.push({ type: filter.type });
    if (filter.tag) and.push({ tags: filter.tag });
    try {
      const docs = await this.principals.find(and.length ? { $and: and } : {}, { sort: { _id: 1 }, limit: page.limit + 1 }).toArray();
      const items = docs.slice(0, page.limit).map(toPrincipal);
      const last = items[items.length - 1];
      return { items, next: docs.length > page.limit && last ? encodeCursor([last.id]) : null };
    } catch (err) {
      throw storeError('list principals', err);
    }
  }

  async touchPrincipals(ids: string[], at: string): Promise<void> {
    try {
      await this.principals.updateMany({ _id: { $in: ids } }, { $set: { lastSeenAt: at } });
    } catch (err) {
      throw storeError('record lastSeenAt', err);
    }
  }

  async createPermission(p: Permission): Promise<void> {
    const { id, ...rest } = p;
    try {
      await this.permissions.insertOne(defined({ _id: id, ...rest }));
    } catch (err) {
      if (isDuplicateKey(err)) throw new NitrogenError('NITROGEN_ERR_CONFLICT', `permission id taken: ${id}`, { cause: err });
      throw storeError('create a permission', err);
    }
  }

  async listPermissions(filter: PermissionFilter = {}): Promise<Permission[]> {
    const query: Filter<PermissionDoc> = {};
    if (filter.issuedTo !== undefined) query.issuedTo = filter.issuedTo;
    if (filter.principalFor !== undefined) query.principalFor = filter.principalFor;
    try {
      return (await this.permissions.find(query).toArray()).map(toPermission).sort(comparePermissions);
    } catch (err) {
      throw storeError('list permissions', err);
    }
  }

  async deletePermission(id: string): Promise<void> {
    let deleted: number;
    try {
      deleted = (await this.permissions.deleteOne({ _id: id })).deletedCount;
    } catch (err) {
      throw storeError('delete a permission', err);
    }
    if (deleted === 0) throw new NitrogenError('NITROGEN_ERR_NOT_FOUND', `no permission '${id}'`);
  }

  async putRecords(records: RegistryRecord[]): Promise<void> {
    if (records.length === 0) return;
    try {
      await this.records.bulkWrite(
        records.map((r) => ({ replaceOne: { filter: { kind: r.kind, key: r.key }, replacement: { kind: r.kind, key: r.key, principal: r.principal, value: JSON.stringify(r.value) }, upsert: true } })),
        { ordered: true },
      );
    } catch (err) {
      throw storeError('write records', err);
    }
  }

  async createRecord(r: RegistryRecord): Promise<void> {
    try {
      await this.records.insertOne({ kind: r.kind, key: r.key, principal: r.principal, value: JSON.stringify(r.value) });
    } catch (err) {
      if (isDuplicateKey(err)) throw new NitrogenError('NITROGEN_ERR_CONFLICT', `${r.kind} '${r.key}' exists`, { cause: err });
      throw storeError('create a record', err);
    }
  }

  async getRecord(kind: string, key: string): Promise<RegistryRecord | null> {
    try {
      const doc = await this.records.findOne({ kind, key });
      return doc ? toRecord(doc) : null;
    } catch (err) {
      throw storeError('read a record', err);
    }
  }

  async listRecords(kind: string, filter: { principal?: string }, page: { limit: number; cursor?: string }): Promise<Page<RegistryRecord>> {
    const query: Filter<RecordDoc> = { kind };
    if (page.cursor !== undefined) query.key = { $gt: decodeCursor(page.cursor, ['string'])[0] as string };
    if (filter.principal !== undefined) query.principal = filter.principal;
    try {
      const docs = await this.records.find(query, { sort: { key: 1 }, limit: page.limit + 1 }).toArray();
      const items = docs.slice(0, page.limit).map(toRecord);
      const last = items[items.length - 1];
      return { items, next: docs.length > page.limit && last ? encodeCursor([last.key]) : null };
    } catch (err) {
      throw storeError('list records', err);
    }
  }

  async deleteRecord(kind: string, key: string): Promise<boolean> {
    try {
      return (await this.records.deleteOne({ kind, key })).deletedCount > 0;
    } catch (err) {
      throw storeError('delete a record', err);
    }
  }
}
