import type { FeedPosition } from './store.js';

/** One owner's hold on a unit of work: `epoch` grows by one each time the unit changes hands. */
export interface Lease {
  key: string;
  owner: string;
  epoch: number;
}

/**
 * The LeaseStore port: leases on units of shared work (a sink's partition) and their fenced
 * checkpoints, kept where every instance of a deployment reaches them (docs/cluster.md,
 * "Sinks across instances"). The Redis bus provides one (adapters/redis/redis-leases.ts).
 *
 * - `heartbeat(group, member, ttlMs)` marks `member` alive in `group` (the instances feeding one
 *   sink) for `ttlMs` and returns the group's live members, sorted; a member that stops beating
 *   drops out after its ttl, one that `leave`s at once.
 * - `acquire(key, owner, ttlMs)` takes a lease that nobody holds (never held, released or
 *   expired) with a new epoch, greater than every earlier one of the key; held by `owner`
 *   already, it is extended with the same epoch; held by another, it returns null.
 * - `renew` extends a lease still held with its epoch and says whether it was; `release` lets
 *   it go (others may take it at once) and does nothing to a lease held by someone else.
 * - `setCheckpoint(lease, position)` writes the checkpoint only while `lease` is held with its
 *   epoch, atomically with that check, and says whether it did: a stale owner (paused past its
 *   ttl, the unit taken over since) cannot move the checkpoint. `getCheckpoint` reads it.
 * - Every operation rejects with NITROGEN_ERR_UNAVAILABLE when the store cannot be reached.
 */
export interface LeaseStore {
  heartbeat(group: string, member: string, ttlMs: number): Promise<string[]>;
  leave(group: string, member: string): Promise<void>;
  acquire(key: string, owner: string, ttlMs: number): Promise<Lease | null>;
  renew(lease: Lease, ttlMs: number): Promise<boolean>;
  release(lease: Lease): Promise<void>;
  getCheckpoint(key: string): Promise<FeedPosition | null>;
  setCheckpoint(lease: Lease, position: FeedPosition): Promise<boolean>;
}
