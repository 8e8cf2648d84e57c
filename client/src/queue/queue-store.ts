/** A queued message as kept: its id and its envelope as JSON, with the JSON's size in UTF-8. */
export interface StoredRecord {
  id: string;
  json: string;
  bytes: number;
}

/** A record being appended: told once it is kept as the store promises. */
export interface AppendedRecord extends StoredRecord {
  markDurable(): void;
}

/**
 * Where the outgoing queue is kept. The outbox holds the queue's order and state in memory;
 * a store only makes it outlive the process: the memory store does nothing, the file store
 * (Node) appends to a file.
 */
export interface QueueStore {
  /** Records an earlier process left undelivered, oldest first. */
  load(): Promise<StoredRecord[]>;
  /** Appends a record, and calls its `markDurable` once it is kept as the store promises. */
  append(record: AppendedRecord): void;
  /** The oldest `count` records are gone for good (delivered, refused or dropped). */
  removeOldest(count: number): void;
  /** Writes what is pending and releases the store. */
  close(): Promise<void>;
}

/** For the browser and for sessions without a queue file: the queue lives as long as the process. */
export class MemoryStore implements QueueStore {
  async load(): Promise<StoredRecord[]> {
    return [];
  }

  append(record: AppendedRecord): void {
    record.markDurable();
  }

  removeOldest(): void {}

  async close(): Promise<void> {}
}
