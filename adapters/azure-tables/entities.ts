import type { TableClient, TransactionAction } from '@azure/data-tables';
import { NitrogenError } from '../../core/errors.js';
import { failedIndex, mapLimit, statusOf, storeError } from './connection.js';

/*
 * Azure Tables limits (learn.microsoft.com, "Understanding the Table service data model"):
 * a string property holds at most 64 KiB (32 Ki UTF-16 units), an entity at most 1 MiB,
 * a transaction at most 100 operations on one partition and 4 MiB of payload.
 */
const CHUNK_CHARS = 32_000;
const MAX_ENTITY_BYTES = 1024 * 1024;
const MAX_TRANSACTION_OPERATIONS = 100;
/** Characters per transaction; at most 3 UTF-8 bytes each on the wire, so well under 4 MiB. */
const MAX_TRANSACTION_CHARS = 1_000_000;

export type Entity = { partitionKey: string; rowKey: string } & Record<string, unknown>;

/** Splits text into string properties `<name>0…`, never between the halves of a surrogate pair. */
export function textProperties(name: string, text: string): Record<string, string | number> {
  const props: Record<string, string | number> = {};
  let count = 0;
  for (let start = 0; start < text.length; count++) {
    let end = Math.min(start + CHUNK_CHARS, text.length);
    const last = text.charCodeAt(end - 1);
    if (end < text.length && last >= 0xd800 && last <= 0xdbff) end--;
    props[name + count] = text.slice(start, end);
    start = end;
  }
  props[name + 'n'] = count;
  return props;
}

export function readText(entity: Record<string, unknown>, name: string): string {
  const count = entity[name + 'n'] as number;
  let text = '';
  for (let i = 0; i < count; i++) text += entity[name + i] as string;
  return text;
}

/** Size of an entity as Azure counts it: UTF-16 strings, 8 bytes per number, names included. */
function entitySize(entity: Entity): number {
  let size = 4 + (entity.partitionKey.length + entity.rowKey.length) * 2;
  for (const [key, value] of Object.entries(entity)) {
    if (key === 'partitionKey' || key === 'rowKey') continue;
    size += 8 + key.length * 2 + (typeof value === 'string' ? 4 + value.length * 2 : 8);
  }
  return size;
}

export function checkEntitySize(entity: Entity, what: string): void {
  const size = entitySize(entity);
  if (size > MAX_ENTITY_BYTES) {
    throw new NitrogenError('NITROGEN_ERR_PAYLOAD_TOO_LARGE', `${what} takes ${size} bytes as an Azure Tables entity; the service holds at most ${MAX_ENTITY_BYTES}`);
  }
}

function chars(entity: Entity): number {
  let n = entity.partitionKey.length + entity.rowKey.length;
  for (const value of Object.values(entity)) if (typeof value === 'string') n += value.length;
  return n;
}

/** Groups actions by partition into transactions within Azure's operation and payload limits. */
function transactions(actions: TransactionAction[]): TransactionAction[][] {
  const byPartition = new Map<string, TransactionAction[][]>();
  const size = new Map<TransactionAction[], number>();
  for (const action of actions) {
    const entity = action[1] as Entity;
    let groups = byPartition.get(entity.partitionKey);
    if (!groups) byPartition.set(entity.partitionKey, (groups = [[]]));
    let current = groups[groups.length - 1]!;
    const weight = chars(entity);
    if (current.length > 0 && (current.length >= MAX_TRANSACTION_OPERATIONS || (size.get(current) ?? 0) + weight > MAX_TRANSACTION_CHARS)) {
      groups.push((current = []));
    }
    current.push(action);
    size.set(current, (size.get(current) ?? 0) + weight);
  }
  return [...byPartition.values()].flat();
}

/** Transactions sent at once by one call; Azure serves partitions in parallel. */
const PARALLEL_REQUESTS = 16;

/**
 * Inserts entities, partition by partition in transactions. An entity whose key is already
 * taken is left out (and its transaction sent again without it); returns those entities.
 */
export async function insertNew(client: TableClient, entities: Entity[], what: string): Promise<Entity[]> {
  const taken: Entity[] = [];
  await mapLimit(transactions(entities.map((e) => ['create', e])), PARALLEL_REQUESTS, async (group) => {
    let pending = group;
    while (pending.length > 0) {
      try {
        await client.submitTransaction(pending);
        return;
      } catch (err) {
        const index = failedIndex(err);
        if (statusOf(err) !== 409 || index === undefined || index >= pending.length) throw storeError(what, err);
        taken.push(pending[index]![1]);
        pending = pending.filter((_, i) => i !== index);
      }
    }
  });
  return taken;
}

/** Writes entities whatever was there (insert or replace), in transactions. */
export async function upsertAll(client: TableClient, entities: Entity[], what: string): Promise<void> {
  await mapLimit(transactions(entities.map((e) => ['upsert', e, 'Replace'])), PARALLEL_REQUESTS, async (group) => {
    try {
      await client.submitTransaction(group);
    } catch (err) {
      throw storeError(what, err);
    }
  });
}

/** Deletes entities by key, ignoring those already gone; returns how many it deleted. */
export async function deleteAll(client: TableClient, keys: Array<{ partitionKey: string; rowKey: string }>, what: string): Promise<number> {
  let deleted = 0;
  await mapLimit(transactions(keys.map((k) => ['delete', k])), PARALLEL_REQUESTS, async (group) => {
    try {
      await client.submitTransaction(group);
      deleted += group.length;
    } catch (err) {
      if (statusOf(err) !== 404) throw storeError(what, err);
      // Some were gone already (an earlier purge stopped half-way): one by one, then.
      for (const [, key] of group) {
        try {
          await client.deleteEntity(key.partitionKey, key.rowKey);
          deleted++;
        } catch (inner) {
          if (statusOf(inner) !== 404) throw storeError(what, inner);
        }
      }
    }
  });
  return deleted;
}

/** Reads one entity, or null when it does not exist. */
export async function getOrNull<T extends object>(client: TableClient, partitionKey: string, rowKey: string, what: string): Promise<(T & Entity & { etag: string }) | null> {
  try {
    return (await client.getEntity<T>(partitionKey, rowKey)) as unknown as T & Entity & { etag: string };
  } catch (err) {
    if (statusOf(err) === 404) return null;
    throw storeError(what, err);
  }
}
