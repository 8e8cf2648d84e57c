import { closeSync, fdatasync, fsyncSync, ftruncate, mkdirSync, openSync, readFileSync, renameSync, write, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { ClientError } from '../errors.js';
import type { AppendedRecord, QueueStore, StoredRecord } from '../queue/queue-store.js';
import { HEADER, RECORD_HEAD, ioError, messageRecord, parse, removedRecord } from './queue-file.js';
import { lockQueue } from './queue-lock.js';

/** An empty queue's file is truncated once it has grown past this. */
const TRUNCATE_AT = 64 * 1024;
/** Removed records are rewritten away once they take this much and more than the live ones. */
const REWRITE_AT = 4 * 1024 * 1024;

export type FsyncPolicy = 'always' | 'never' | number;

export interface FileStoreOptions {
  path: string;
  fsync: FsyncPolicy;
  /** A fault of the file: the session reports it; the queue goes on in memory. */
  onError(error: ClientError): void;
  /** The file had a damaged tail, cut off at open. */
  onRepaired(droppedBytes: number): void;
}

/**
 * The durable queue of a device on Node. Appends made in one turn of the event loop go out in
 * one write (group commit). `fsync` says when a record counts as kept (`queued()` resolves):
 * `'always'` after the write and an fdatasync, so it survives a power cut; a number of
 * milliseconds after the write, with an fdatasync at most that long after; `'never'` after the
 * write, leaving the rest to the system. A write, once done, survives a crash of the process in
 * every case: the data is in the kernel.
 */
export class FileStore implements QueueStore {
  private fd = -1;
  private unlock: (() => void) | null = null;
  /** Records in the file or about to be, oldest first; the first `removedInFile` are gone. */
  private inFile: StoredRecord[] = [];
  private removedInFile = 0;
  /** The count the file's last `removed` record holds. */
  private markedRemoved = 0;
  private fileBytes = HEADER.length;
  /** On-disk size of the removed records still in the file. */
  private deadBytes = 0;
  private pending: Buffer[] = [];
  private pendingDurable: AppendedRecord[] = [];
  private writing = false;
  private flushQueued = false;
  private dirty = false;
  private syncTimer: ReturnType<typeof setInterval> | undefined;
  private idleWaiters: Array<() => void> = [];
  private broken = false;

  constructor(private readonly options: FileStoreOptions) {}

  async load(): Promise<StoredRecord[]> {
    const { path } = this.options;
    try {
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    } catch (err) {
      throw ioError(path, 'cannot create its directory', err);
    }
    this.unlock = lockQueue(path);
    let records: StoredRecord[];
    try {
      let file: Buffer;
      try {
        file = readFileSync(path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError(path, 'cannot read', err);
        file = HEADER;
      }
      const parsed = parse(file, path);
      records = parsed.records;
      if (parsed.goodLength < file.length) this.options.onRepaired(file.length - parsed.goodLength);
      // Start from a file holding exactly the live records: counting is simpler from there on.
      this.rewriteSync(records);
    } catch (err) {
      this.unlock();
      throw err;
    }
    this.inFile = records.slice();
    if (typeof this.options.fsync === 'number') {
      this.syncTimer = setInterval(() => this.syncIfDirty(), this.options.fsync);
      this.syncTimer.unref();
    }
    return records;
  }

  append(record: AppendedRecord): void {
    if (this.broken || this.fd < 0) return record.markDurable(); // the fault was reported; the queue goes on in memory
    this.inFile.push(record);
    this.pending.push(messageRecord(record));
    this.pendingDurable.push(record);
    this.scheduleFlush();
  }

  removeOldest(count: number): void {
    if (this.broken || this.fd < 0) return;
    for (let i = 0; i < count; i++) {
      const r = this.inFile[this.removedInFile++]!;
      this.deadBytes += RECORD_HEAD + 1 + r.id.length + r.bytes;
    }
    this.scheduleFlush();
  }

  async close(): Promise<void> {
    clearInterval(this.syncTimer);
    if (this.fd < 0) return;
    await this.idle();
    try {
      fsyncSync(this.fd);
      closeSync(this.fd);
    } catch {
      // best effort: what was written is in the kernel
    }
    this.fd = -1;
    this.unlock?.();
  }

  private hasWork(): boolean {
    return this.pending.length > 0 || this.removedInFile !== this.markedRemoved;
  }

  /** Resolves once everything appended and removed so far is written. */
  private idle(): Promise<void> {
    if (this.broken || (!this.writing && !this.hasWork())) return Promise.resolve();
    return new Promise((resolve) => {
      this.idleWaiters.push(resolve);
      if (!this.writing) this.flushNow();
    });
  }

  private scheduleFlush(): void {
    if (this.flushQueued || this.writing) return;
    this.flushQueued = true;
    queueMicrotask(() => {
      this.flushQueued = false;
      if (!this.writing) this.flushNow();
    });
  }

  /** One write of everything pending: new records, then how many are removed. */
  private flushNow(): void {
    if (this.fd < 0 || this.broken) return;
    if (!this.hasWork()) return this.wakeIdle();
    const live = this.inFile.length - this.removedInFile;
    if (live === 0 && this.fileBytes + this.pendingBytes() > TRUNCATE_AT) return this.truncate();
    if (this.deadBytes > REWRITE_AT && this.deadBytes > this.fileBytes + this.pendingBytes() - this.deadBytes) return this.rewrite();
    if (this.removedInFile !== this.markedRemoved) {
      this.pending.push(removedRecord(this.removedInFile));
      this.markedRemoved = this.removedInFile;
    }
    const data = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending);
    const durable = this.pendingDurable;
    this.pending = [];
    this.pendingDurable = [];
    this.writing = true;
    write(this.fd, data, (err) => {
      if (err) return this.fail('cannot write', err, durable);
      this.fileBytes += data.length;
      if (this.options.fsync !== 'always') return this.written(durable);
      fdatasync(this.fd, (syncErr) => (syncErr ? this.fail('cannot fsync', syncErr, durable) : this.written(durable)));
    });
  }

  private written(durable: AppendedRecord[]): void {
    this.writing = false;
    if (this.options.fsync !== 'always') this.dirty = true;
    for (const record of durable) record.markDurable();
    this.flushNow();
  }

  private wakeIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const wake of waiters) wake();
  }

  private pendingBytes(): number {
    let n = 0;
    for (const b of this.pending) n += b.length;
    return n;
  }

  /** Everything is removed: the file goes back to its header, and pending records are moot. */
  private truncate(): void {
    const durable = this.pendingDurable;
    this.inFile = [];
    this.removedInFile = this.markedRemoved = 0;
    this.pending = [];
    this.pendingDurable = [];
    this.deadBytes = 0;
    this.writing = true;
    ftruncate(this.fd, HEADER.length, (err) => {
      if (err) return this.fail('cannot truncate', err, durable);
      this.fileBytes = HEADER.length;
      this.written(durable);
    });
  }

  /** Only live records, to a new file renamed over the old one: rare, and bounded by the queue's size. */
  private rewrite(): void {
    const live = this.inFile.slice(this.removedInFile);
    const durable = this.pendingDurable;
    this.pending = [];
    this.pendingDurable = [];
    try {
      closeSync(this.fd);
      this.rewriteSync(live);
    } catch (err) {
      return this.fail('cannot rewrite', err, durable);
    }
    this.inFile = live;
    this.removedInFile = this.markedRemoved = 0;
    this.deadBytes = 0;
    for (const record of durable) record.markDurable();
    this.wakeIdle();
  }

  private rewriteSync(records: StoredRecord[]): void {
    const { path } = this.options;
    const temp = `${path}.new`;
    try {
      const data = Buffer.concat([HEADER, ...records.map(messageRecord)]);
      writeFileSync(temp, data, { mode: 0o600 });
      const tempFd = openSync(temp, 'r+');
      fsyncSync(tempFd);
      closeSync(tempFd);
      renameSync(temp, path);
      syncDirectory(dirname(path));
      this.fd = openSync(path, 'a');
      this.fileBytes = data.length;
    } catch (err) {
      this.fd = -1;
      throw ioError(path, 'cannot write', err);
    }
  }

  private syncIfDirty(): void {
    if (!this.dirty || this.writing || this.fd < 0 || this.broken) return;
    this.dirty = false;
    fdatasync(this.fd, (err) => err && this.fail('cannot fsync', err, []));
  }

  private fail(what: string, err: unknown, durable: AppendedRecord[]): void {
    this.writing = false;
    this.broken = true;
    this.options.onError(ioError(this.options.path, what, err));
    for (const record of durable) record.markDurable();
    this.wakeIdle();
  }
}

/** A rename is durable once its directory is synced (Linux); elsewhere this may be refused. */
function syncDirectory(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // some systems cannot fsync a directory; the rename is then as durable as they make it
  }
}
