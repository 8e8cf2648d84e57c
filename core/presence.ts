import type { Logger } from './logger.js';
import { newMessageId, type Message } from './message.js';
import type { Registry, RegistryRecord } from './ports/registry.js';

const PRESENCE = 'presence';
/** The types of the messages a change of connection state is told by (docs/api.md, "Presence"). */
const CONNECTED = 'nitrogen.connected';
const DISCONNECTED = 'nitrogen.disconnected';

/** Whether a principal is connected, since when, from where, via which instance and transport. */
export interface PresenceState {
  connected: boolean;
  /** When it connected, or when its last connection ended. */
  since: string;
  /** The client address of its latest connection. */
  address?: string;
  /** The instance (`cluster.instanceId`) holding, or last holding, its connection. */
  instance: string;
  /** `mqtt`, `mqtts`, `mqtt-ws` or `mqtt-wss`. */
  transport: string;
  /** Its open connections on that instance. */
  connections: number;
}

export interface ConnectionInfo {
  transport: string;
  address?: string;
}

export interface PresenceOptions {
  instanceId: string;
  /** Commit `nitrogen.connected` / `nitrogen.disconnected` messages. */
  events: boolean;
  /** How often changes are written to the registry. */
  flushMs: number;
  /** Commits server-made messages and fans them out (Ingestor.record). */
  record(messages: Message[]): Promise<void>;
}

/**
 * What the service knows of a principal's connections:
 * - `lastSeenAt`, for principals that authenticate, in one registry write every few seconds:
 *   30,000 cars reconnecting must not cost 30,000 fsyncs;
 * - presence: connected or not, since when, from where, via which instance and transport,
 *   written to the registry in batches (`devices.presenceFlush`) and told as messages
 *   (`nitrogen.connected`, `nitrogen.disconnected`, from the principal itself) that are stored
 *   and delivered like any other, so whoever may subscribe to a device may follow its presence.
 *
 * An instance that stopped without closing its connections (a crash) finds, when it starts
 * again (`attach`), the principals it had left connected, and marks them disconnected.
 */
export class Presence {
  private seen = new Set<string>();
  private timer?: NodeJS.Timeout;
  private presenceTimer?: NodeJS.Timeout;
  /** Presence as this instance holds it, for principals with a connection here since the start. */
  private readonly live = new Map<string, PresenceState>();
  private dirty = new Map<string, PresenceState>();
  private options?: PresenceOptions;
  private recording = new Set<Promise<void>>();

  constructor(
    private readonly registry: Registry,
    private readonly logger: Logger,
    private readonly intervalMs = 5000,
  ) {}

  async start(): Promise<void> {
    this.timer = setInterval(() => void this.flush(), this.intervalMs);
    this.timer.unref();
  }

  /**
   * Turns on presence (once the ingestion pipeline exists, which tells it), and ends what a
   * crash of this instance left connected.
   */
  async attach(options: PresenceOptions): Promise<void> {
    this.options = options;
    this.presenceTimer = setInterval(() => void this.flushPresence(), options.flushMs);
    this.presenceTimer.unref();
    const now = new Date().toISOString();
    const stale: RegistryRecord[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.registry.listRecords(PRESENCE, {}, cursor === undefined ? { limit: 1000 } : { limit: 1000, cursor });
      for (const record of page.items) {
        const state = record.value as PresenceState;
        if (state.connected && state.instance === options.instanceId) stale.push({ ...record, value: { ...state, connected: false, since: now, connections: 0 } });
      }
      cursor = page.next ?? undefined;
    } while (cursor);
    if (stale.length === 0) return;
    this.logger.info({ principals: stale.length }, 'marking principals left connected by an earlier run of this instance as disconnected');
    await this.registry.putRecords(stale);
    if (options.events) await options.record(stale.map((r) => this.event(DISCONNECTED, r.principal, r.value as PresenceState, 'the instance restarted')));
  }

  seenNow(id: string): void {
    this.seen.add(id);
  }

  /** A connection of `id` was accepted (after its CONNACK). */
  connected(id: string, info: ConnectionInfo): void {
    const options = this.options;
    if (!options) return;
    const before = this.live.get(id);
    const state: PresenceState = {
      connected: true,
      since: before?.connected ? before.since : new Date().toISOString(),
      instance: options.instanceId,
      transport: info.transport,
      connections: (before?.connections ?? 0) + 1,
    };
    if (info.address !== undefined) state.address = info.address;
    this.change(id, state);
    if (state.connections === 1) this.emit(CONNECTED, id, state);
  }

  /** A connection of `id` ended; `reason` says how (docs/api.md, "Presence"). */
  disconnected(id: string, reason: string): void {
    const options = this.options;
    const before = this.live.get(id);
    if (!options || !before?.connected) return;
    const connections = before.connections - 1;
    const state: PresenceState = connections > 0 ? { ...before, connections } : { ...before, connected: false, since: new Date().toISOString(), connections: 0 };
    this.change(id, state);
    if (connections === 0) this.emit(DISCONNECTED, id, state, reason);
  }

  /**
   * A connection of `id` ended because its client id connected through another instance, which
   * tells the presence of that connection. This instance writes and tells no disconnection:
   * written after the other instance's, it would undo it.
   */
  movedAway(id: string): void {
    const before = this.live.get(id);
    if (!this.options || !before?.connected) return;
    if (before.connections > 1) return this.change(id, { ...before, connections: before.connections - 1 });
    this.live.delete(id);
    this.dirty.delete(id);
  }

  /** The presence of `id`: this instance's view first (also what is not yet written), else the registry's; null when it never connected. */
  async state(id: string): Promise<PresenceState | null> {
    const here = this.live.get(id) ?? this.dirty.get(id);
    if (here) return { ...here };
    return ((await this.registry.getRecord(PRESENCE, id))?.value as PresenceState | undefined) ?? null;
  }

  private change(id: string, state: PresenceState): void {
    // Forgotten once disconnected: memory holds the connected principals only.
    if (state.connected) this.live.set(id, state);
    else this.live.delete(id);
    this.dirty.set(id, state);
  }

  private event(type: string, id: string, state: PresenceState, reason?: string): Message {
    const now = Date.now();
    const body: Record<string, unknown> = { instance: state.instance, transport: state.transport };
    if (state.address !== undefined) body.address = state.address;
    if (reason !== undefined) body.reason = reason;
    return { id: newMessageId(now), type, from: id, ts: new Date(now).toISOString(), body };
  }

  private emit(type: string, id: string, state: PresenceState, reason?: string): void {
    const options = this.options!;
    if (!options.events) return;
    const recorded = options.record([this.event(type, id, state, reason)]).catch((err: unknown) => this.logger.warn({ err, principal: id, type }, 'could not record a presence event'));
    this.recording.add(recorded);
    void recorded.finally(() => this.recording.delete(recorded));
  }

  async flush(): Promise<void> {
    if (this.seen.size === 0) return;
    const ids = [...this.seen];
    this.seen = new Set();
    try {
      await this.registry.touchPrincipals(ids, new Date().toISOString());
    } catch (err) {
      this.logger.warn({ err }, 'could not record lastSeenAt');
    }
  }

  private async flushPresence(): Promise<void> {
    if (this.dirty.size === 0) return;
    const batch = this.dirty;
    this.dirty = new Map();
    try {
      await this.registry.putRecords([...batch].map(([id, state]) => ({ kind: PRESENCE, key: id, principal: id, value: state })));
    } catch (err) {
      // Written with the next batch, unless a newer state replaced it meanwhile.
      for (const [id, state] of batch) if (!this.dirty.has(id)) this.dirty.set(id, state);
      this.logger.warn({ err }, 'could not record presence');
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    clearInterval(this.presenceTimer);
    await Promise.all(this.recording);
    await this.flush();
    await this.flushPresence();
  }
}
