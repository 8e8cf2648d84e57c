import type { ComponentHealth } from '../health.js';
import type { Message } from '../message.js';
import type { LeaseStore } from './leases.js';
import type { Lifecycle } from './lifecycle.js';
import type { SessionState } from './session-state.js';

/** Who this instance is among the instances that serve one deployment (docs/cluster.md). */
export interface InstanceIdentity {
  /** `cluster.instanceId`: stable across restarts, unique in the deployment. */
  id: string;
  /** Random per process: what an instance numbers restarts with it. */
  run: string;
}

/** A batch of committed messages that another instance published, in the order it committed them. */
export interface RemoteBatch {
  instance: string;
  run: string;
  /** Sequence number of the first message in that instance's run; the others follow by one. */
  seq: number;
  messages: Message[];
}

/**
 * The Cluster port: what several instances of one deployment share besides the Store and the
 * Registry (docs/cluster.md). The default keeps everything in this process; the Redis adapter
 * (adapters/redis) spans instances.
 *
 * - `publish` hands committed and acknowledged messages to the other instances. It never waits
 *   and never throws: live delivery is at most once across instances (the store keeps every
 *   message), and what cannot be sent while the bus is down is counted and dropped, never
 *   buffered without bound. Batches from one instance arrive in the order it published them;
 *   an instance never receives its own.
 * - `broadcast` sends an event (a revocation, a permission change, a transport's session
 *   notice) to every other instance at once; it rejects with NITROGEN_ERR_UNAVAILABLE when the
 *   bus is down.
 * - `sessions`, when present, is the persistent-session state every instance reads and writes
 *   (core/ports/session-state.ts); transports keep their sessions in memory without it.
 * - `leases`, when present, holds the leases and fenced checkpoints of sink partitions
 *   (core/ports/leases.ts), so a sink's work is spread over the instances; without it every
 *   instance feeds every sink from the store's own checkpoint, as one instance alone does.
 * - `health` says whether the bus is reachable: a bus that is down leaves the instance
 *   serving (acknowledgements wait only for the store) and degraded.
 */
export interface Cluster extends Lifecycle {
  publish(messages: readonly Message[], seq: number): void;
  onMessages(listener: (batch: RemoteBatch) => void): void;
  broadcast(channel: string, data: unknown): Promise<void>;
  onEvent(listener: (channel: string, data: unknown, from: string) => void): void;
  /** The bus came back after an outage: what was learned from its events meanwhile may be missing. */
  onReconnect?(listener: () => void): void;
  readonly sessions?: SessionState;
  readonly leases?: LeaseStore;
  health(): ComponentHealth | Promise<ComponentHealth>;
}

/** The default: one instance, nothing to share. */
export class LocalCluster implements Cluster {
  publish(): void {}
  onMessages(): void {}
  async broadcast(): Promise<void> {}
  onEvent(): void {}
  health(): ComponentHealth {
    return { status: 'ok' };
  }
}
