import { ClientError, closedError } from './errors.js';
import { Deque } from './deque.js';
import type { QueueStore, StoredRecord } from './queue/queue-store.js';

const QUEUED = 0;
const SENT = 1;
const DONE = 2;

/**
 * One message on its way: what `send` returns. It is awaitable (it resolves with the message id
 * once the server acknowledged the message durably) but creates no promise unless awaited: a
 * device that sends and forgets pays nothing for it, and a failure nobody awaits is reported
 * through the session's `rejected` and `dropped` events instead of as an unhandled rejection.
 */
export class Sending implements PromiseLike<string> {
  /** @internal */ state = QUEUED;
  /** @internal */ durable = false;
  private error: ClientError | null = null;
  /** What `then` is waiting with: most sends have none or one, so an array only for more. */
  private waiters: Waiter | Waiter[] | null = null;
  private kept: { promise: Promise<void>; resolve(): void; reject(error: ClientError): void } | null = null;

  constructor(
    readonly id: string,
    /** @internal */ readonly json: string,
    /** @internal */ readonly bytes: number,
  ) {}

  then<A = string, B = never>(onDelivered?: ((id: string) => A | PromiseLike<A>) | null, onFailed?: ((error: ClientError) => B | PromiseLike<B>) | null): Promise<A | B> {
    if (this.state === DONE) return (this.error ? Promise.reject(this.error) : Promise.resolve(this.id)).then(onDelivered, onFailed);
    // Settled by `settle`; the callbacks run as a promise's do, on a later microtask. (Node's
    // queueMicrotask would cost an async resource per message.)
    return new Promise<string>((resolve, reject) => {
      const waiter: Waiter = (error, id) => (error ? reject(error) : resolve(id));
      if (this.waiters === null) this.waiters = waiter;
      else if (Array.isArray(this.waiters)) this.waiters.push(waiter);
      else this.waiters = [this.waiters, waiter];
    }).then(onDelivered, onFailed);
  }

  catch<B = never>(onFailed: (error: ClientError) => B | PromiseLike<B>): Promise<string | B> {
    return this.then(null, onFailed);
  }

  /** Resolves once the message is in the queue as durably as the queue keeps it (file: written, and fsynced as `queue.fsync` says). */
  queued(): Promise<void> {
    if (!this.kept) {
      if (this.durable) return Promise.resolve();
      if (this.error) return Promise.reject(this.error);
      let resolve!: () => void;
      let reject!: (error: ClientError) => void;
      const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
      this.kept = { promise, resolve, reject };
    }
    return this.kept.promise;
  }

  /** @internal */ markDurable(): void {
    this.durable = true;
    this.kept?.resolve();
  }

  /** @internal */ settle(error: ClientError | null): void {
    this.state = DONE;
    this.error = error;
    if (error && !this.durable) this.kept?.reject(error);
    const waiters = this.waiters;
    if (waiters === null) return;
    this.waiters = null;
    if (Array.isArray(waiters)) for (const w of waiters) w(error, this.id);
    else waiters(error, this.id);
  }
}

type Waiter = (error: ClientError | null, id: string) => void;

/** What carries queued messages to the server: MQTT (QoS 1 PUBLISHes) or REST (POST /messages). */
export interface Carrier {
  /** How many more messages it takes now (0 while offline or with a full window). */
  room(): number;
  send(message: Sending): void;
  /** After a run of `send`s: a carrier that batches sends the batch now. */
  flush(): void;
}

export interface QueueLimits {
  maxMessages: number;
  maxBytes: number;
  whenFull: 'reject' | 'drop-oldest';
}

export interface OutboxEvents {
  rejected(id: string, error: ClientError): void;
  /** A message left unsent: the new one, refused (NITROGEN_CLIENT_QUEUE_FULL), or the oldest, dropped for it (NITROGEN_CLIENT_DROPPED). */
  dropped(id: string, error: ClientError): void;
}

/**
 * The outgoing queue: messages in the order they were sent, each removed only once the server
 * acknowledged it (or refused it for good, or it was dropped to make room). The carrier takes
 * messages from the front as it has room; when its connection is lost, whatever it had in flight
 * goes back to being unsent and is sent again, in order, under the same id, so the server stores
 * it once (its idempotency key is the sender and the id).
 */
export class Outbox {
  /** The queue, oldest first; `next` counts those at its front already given to the carrier (or done). */
  private readonly entries = new Deque<Sending>();
  private next = 0;
  private totalBytes = 0;
  private carrier: Carrier | null = null;
  private closed = false;
  private drainWaiters: Array<() => void> | null = null;

  constructor(
    private readonly store: QueueStore,
    private readonly limits: QueueLimits,
    private readonly events: OutboxEvents,
  ) {}

  /** Takes back what an earlier process left in the store: those messages go first. */
  async restore(): Promise<number> {
    const records: StoredRecord[] = await this.store.load();
    for (const r of records) {
      const entry = new Sending(r.id, r.json, r.bytes);
      entry.durable = true;
      this.entries.push(entry);
      this.totalBytes += r.bytes;
    }
    return records.length;
  }

  get size(): number {
    return this.entries.length;
  }

  /**
   * Queues a message. When the queue is full and may not drop the oldest, the message is not
   * queued: what comes back has failed with NITROGEN_CLIENT_QUEUE_FULL (a device sending from a
   * timer is told, not thrown at).
   */
  enqueue(id: string, json: string, bytes: number): Sending {
    if (this.closed) throw closedError('send');
    const entry = new Sending(id, json, bytes);
    const full = this.makeRoom(bytes);
    if (full) {
      entry.settle(full);
      this.events.dropped(id, full);
      return entry;
    }
    this.entries.push(entry);
    this.totalBytes += bytes;
    this.store.append(entry);
    this.pump();
    return entry;
  }

  /** Resolves once the queue is empty. */
  drained(): Promise<void> {
    if (this.entries.length === 0) return Promise.resolve();
    return new Promise((resolve) => (this.drainWaiters ??= []).push(resolve));
  }

  /** Sets (or, with null, takes away) the carrier, and gives it what it has room for. */
  attach(carrier: Carrier | null): void {
    this.carrier = carrier;
    this.pump();
  }

  /** Gives the carrier the next messages, as many as it has room for. */
  pump(): void {
    const carrier = this.carrier;
    if (!carrier || this.next >= this.entries.length) return;
    let room = carrier.room();
    if (room <= 0) return;
    while (room > 0 && this.next < this.entries.length) {
      const entry = this.entries.at(this.next++);
      if (entry.state === DONE) continue; // refused out of turn, still behind an older one
      room--;
      entry.state = SENT;
      carrier.send(entry);
    }
    carrier.flush();
  }

  /** The server acknowledged `entry`; it leaves the queue with everything before it that is done. */
  delivered(entry: Sending): void {
    if (entry.state === DONE) return; // dropped while in flight
    entry.settle(null);
    this.removeDone();
  }

  /** The server refused `entry` for good: it leaves the queue, and its sender learns why. */
  refused(entry: Sending, error: ClientError): void {
    if (entry.state === DONE) return;
    entry.settle(error);
    this.events.rejected(entry.id, error);
    this.removeDone();
  }

  /** The carrier lost its connection: what it had in flight is sent again, first. */
  rewind(): void {
    for (let i = 0; i < this.next; i++) {
      const entry = this.entries.at(i);
      if (entry.state === SENT) entry.state = QUEUED;
    }
    this.next = 0;
    while (this.next < this.entries.length && this.entries.at(this.next).state === DONE) this.next++;
  }

  /** The oldest message the carrier has in flight, if any. */
  oldestInFlight(): Sending | null {
    for (let i = 0; i < this.next; i++) if (this.entries.at(i).state === SENT) return this.entries.at(i);
    return null;
  }

  /** Stops taking messages; those not delivered fail with NITROGEN_CLIENT_CLOSED (and stay in a queue file). */
  async close(): Promise<void> {
    this.closed = true;
    this.carrier = null;
    const error = closedError('send');
    for (let i = 0; i < this.entries.length; i++) if (this.entries.at(i).state !== DONE) this.entries.at(i).settle(error);
    await this.store.close();
  }

  /** Drops the oldest as the limits say; returns the error for the new message when it cannot have room. */
  private makeRoom(bytes: number): ClientError | null {
    const { maxMessages, maxBytes, whenFull } = this.limits;
    if (bytes > maxBytes) return full('queue.maxBytes', `the message alone (${bytes} bytes) is larger than queue.maxBytes (${maxBytes})`);
    while (this.size + 1 > maxMessages || this.totalBytes + bytes > maxBytes) {
      const limit = this.size + 1 > maxMessages ? 'queue.maxMessages' : 'queue.maxBytes';
      if (whenFull === 'reject') return full(limit, `the queue is full: ${this.size} messages, ${this.totalBytes} bytes (${limit} ${limit === 'queue.maxMessages' ? maxMessages : maxBytes})`);
      const oldest = this.entries.at(0);
      const dropped = new ClientError('NITROGEN_CLIENT_DROPPED', `message ${oldest.id} was dropped unsent to make room (${limit})`, { limit, id: oldest.id });
      oldest.settle(dropped);
      this.events.dropped(oldest.id, dropped);
      this.removeDone();
    }
    return null;
  }

  private removeDone(): void {
    let removed = 0;
    while (this.entries.length > 0 && this.entries.at(0).state === DONE) {
      this.totalBytes -= this.entries.shift()!.bytes;
      removed++;
    }
    if (removed === 0) return;
    this.next = Math.max(0, this.next - removed);
    this.store.removeOldest(removed);
    if (this.entries.length === 0 && this.drainWaiters) {
      const waiters = this.drainWaiters;
      this.drainWaiters = null;
      for (const wake of waiters) wake();
    }
    this.pump();
  }
}

function full(limit: string, message: string): ClientError {
  return new ClientError('NITROGEN_CLIENT_QUEUE_FULL', message, { limit });
}
