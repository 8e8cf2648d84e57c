import { createHash } from 'node:crypto';
import { NitrogenError } from './errors.js';
import type { Logger } from './logger.js';
import type { Lease, LeaseStore } from './ports/leases.js';
import type { FeedPosition, Store } from './ports/store.js';

/**
 * Sink work spread over the instances of a deployment (docs/cluster.md, "Sinks across instances").
 *
 * Each sink's feed is split into partitions by the sender (`partitionOf`), so one device's
 * messages stay in order within one partition. Each (sink, partition) is a unit with a lease:
 * the instance that holds it feeds it, the others do not. Which instance should hold a unit is
 * decided by rendezvous hashing over the live members, so every instance reaches the same answer
 * without talking, and a member that comes or goes moves only its share of the units.
 *
 * Every `ttlMs / 3` an instance beats (stays a live member for `ttlMs`), renews the leases it
 * holds, hands over those that now belong to another live member, and takes those that belong
 * to it and are free. An owner that dies stops beating and renewing: its membership and leases
 * expire after `ttlMs`, and the next tick of the instance that inherits each unit takes it, so a
 * unit has a new owner within `ttlMs + ttlMs / 3` of the death. A graceful stop releases at once.
 *
 * Checkpoints are fenced: a unit's checkpoint is written only while its lease is held with the
 * writer's epoch (`LeaseStore.setCheckpoint`), so an owner that was paused past its ttl and
 * lost the unit cannot move the checkpoint back or forth; it stops the unit when a write is
 * refused. What it sent meanwhile is delivered again by the new owner (at-least-once).
 */

export interface SinkUnit {
  /** The sink's name: its units' lease keys start with it. */
  sink: string;
  partition: number;
  partitions: number;
}

/** Where a unit's runner reads and writes its checkpoint instead of the store. */
export interface UnitCheckpoints {
  get(): Promise<FeedPosition | null>;
  /** Throws NITROGEN_ERR_CONFLICT when the lease was lost: the checkpoint did not move. */
  set(position: FeedPosition): Promise<void>;
}

/** A running unit, as the starter returns it. */
interface UnitWork {
  stop(): Promise<void>;
}

export type UnitStarter = (unit: SinkUnit, checkpoints: UnitCheckpoints) => Promise<UnitWork>;

export interface SinkLeasesOptions {
  /** Names this instance among the members: stable across restarts (`cluster.instanceId`). */
  member: string;
  /** Names this process as a lease holder: a restarted instance does not inherit its old leases. */
  owner: string;
  ttlMs: number;
}

/** The lease key of a unit: `<sink>/<partition>`. */
export function unitKey(unit: SinkUnit): string {
  return `${unit.sink}/${unit.partition}`;
}

/** FNV-1a of the sender, modulo the partitions: the same on every instance and every start. */
export function partitionOf(from: string, partitions: number): number {
  if (partitions <= 1) return 0;
  let hash = 0x811c9dc5;
  for (let i = 0; i < from.length; i++) {
    hash ^= from.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % partitions;
}

/** The member that should hold `key`: the highest hash of (member, key) (rendezvous hashing). */
export function preferredMember(key: string, members: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestScore = '';
  for (const member of members) {
    const score = createHash('sha1').update(member).update('\0').update(key).digest('hex');
    if (best === undefined || score > bestScore) {
      best = member;
      bestScore = score;
    }
  }
  return best;
}

interface Held {
  unit: SinkUnit;
  lease: Lease;
  work?: UnitWork;
  /** When the lease was last confirmed: past `ttlMs` without news, it is presumed lost. */
  confirmedAt: number;
}

export class SinkLeases {
  private readonly held = new Map<string, Held>();
  private timer?: NodeJS.Timeout;
  private ticking?: Promise<void>;
  private stopped = false;

  constructor(
    private readonly leases: LeaseStore,
    /** Where checkpoints written before the sink was spread over instances are (`sink:<name>`): a unit with none of its own starts there. */
    private readonly store: Store,
    private readonly units: readonly SinkUnit[],
    private readonly startUnit: UnitStarter,
    private readonly options: SinkLeasesOptions,
    private readonly logger: Logger,
  ) {}

  /** Takes this instance's share at once, then keeps it up to date every `ttlMs / 3`. */
  async start(): Promise<void> {
    await this.tick();
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(
      () => {
        this.ticking = this.tick().finally(() => {
          this.ticking = undefined;
          this.schedule();
        });
      },
      Math.max(10, Math.floor(this.options.ttlMs / 3)),
    );
    this.timer.unref();
  }

  /** Stops every unit held, releases the leases and leaves, so the others take over at their next tick. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.ticking;
    for (const held of [...this.held.values()]) await this.drop(held, true);
    for (const sink of this.sinks()) await this.leases.leave(sink, this.options.member).catch(() => undefined);
  }

  /** The units this instance feeds now. */
  heldUnits(): SinkUnit[] {
    return [...this.held.values()].map((h) => h.unit);
  }

  /**
   * Every unit's checkpoint (null where none), for retention: what a sink has not passed on any
   * instance is kept. Rejects when the lease store is unreachable: retention then waits.
   */
  async positions(): Promise<(FeedPosition | null)[]> {
    return Promise.all(this.units.map((unit) => this.checkpointOf(unit)));
  }

  private async checkpointOf(unit: SinkUnit): Promise<FeedPosition | null> {
    return (await this.leases.getCheckpoint(unitKey(unit))) ?? (await this.store.getCheckpoint(`sink:${unit.sink}`));
  }

  private sinks(): string[] {
    return [...new Set(this.units.map((u) => u.sink))];
  }

  /** One round: beat, then renew, hand over and take, unit by unit. */
  async tick(): Promise<void> {
    // Members per sink: an instance is given only partitions of sinks it has.
    const members = new Map<string, string[]>();
    try {
      for (const sink of this.sinks()) members.set(sink, await this.leases.heartbeat(sink, this.options.member, this.options.ttlMs));
    } catch (err) {
      this.logger.warn({ err }, 'sink leases: cannot reach the lease store; units whose leases may have expired stop');
      await this.expireUnconfirmed();
      return;
    }
    for (const unit of this.units) {
      if (this.stopped) return;
      const key = unitKey(unit);
      try {
        await this.settle(unit, key, preferredMember(key, members.get(unit.sink)!) === this.options.member);
      } catch (err) {
        this.logger.warn({ err, unit: key }, 'sink leases: could not settle a unit; trying again at the next tick');
      }
    }
    await this.expireUnconfirmed();
  }

  private async settle(unit: SinkUnit, key: string, mine: boolean): Promise<void> {
    const held = this.held.get(key);
    if (held && !mine) {
      this.logger.info({ unit: key }, 'sink leases: handing a unit over to the instance it belongs to');
      await this.drop(held, true);
    } else if (held) {
      if (await this.leases.renew(held.lease, this.options.ttlMs)) held.confirmedAt = Date.now();
      else {
        this.logger.warn({ unit: key, epoch: held.lease.epoch }, 'sink leases: lease lost (expired or taken over); the unit stops here');
        await this.drop(held, false);
      }
    } else if (mine) {
      const lease = await this.leases.acquire(key, this.options.owner, this.options.ttlMs);
      if (!lease) return; // Its previous owner holds it until it hands it over or its lease expires.
      const entry: Held = { unit, lease, confirmedAt: Date.now() };
      this.held.set(key, entry);
      try {
        entry.work = await this.startUnit(unit, this.fencedCheckpoints(entry));
        this.logger.info({ unit: key, epoch: lease.epoch }, 'sink leases: feeding a unit');
      } catch (err) {
        await this.drop(entry, true);
        throw err;
      }
    }
  }

  private fencedCheckpoints(entry: Held): UnitCheckpoints {
    return {
      get: () => this.checkpointOf(entry.unit),
      set: async (position) => {
        if (await this.leases.setCheckpoint(entry.lease, position)) return;
        // Stopped from outside the runner's own checkpoint writer, which is what awaits this.
        if (this.held.get(unitKey(entry.unit)) === entry) void this.drop(entry, false);
        throw new NitrogenError('NITROGEN_ERR_CONFLICT', `sink leases: the lease on ${unitKey(entry.unit)} (epoch ${entry.lease.epoch}) is no longer held; the checkpoint did not move`);
      },
    };
  }

  /** Units not confirmed within their ttl may be someone else's now: stop them. */
  private async expireUnconfirmed(): Promise<void> {
    const deadline = Date.now() - this.options.ttlMs;
    for (const held of [...this.held.values()]) if (held.confirmedAt < deadline) await this.drop(held, false);
  }

  private async drop(held: Held, release: boolean): Promise<void> {
    if (this.held.get(unitKey(held.unit)) !== held) return;
    this.held.delete(unitKey(held.unit));
    await held.work?.stop().catch((err: unknown) => this.logger.warn({ err, unit: unitKey(held.unit) }, 'sink leases: a unit failed to stop'));
    if (release) await this.leases.release(held.lease).catch(() => undefined);
  }
}
