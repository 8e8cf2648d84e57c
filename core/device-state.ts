import { requireAllowed } from './access.js';
import { NitrogenError } from './errors.js';
import { newMessageId, type Message } from './message.js';
import type { Identity } from './ports/identity.js';
import type { Principal } from './ports/principal.js';
import type { Registry, RegistryRecord } from './ports/registry.js';
import type { Store } from './ports/store.js';
import { difference, mergePatch, type Json } from './twin-documents.js';

const STATE_TYPES = 'state-types';
const TWINS = 'twins';
/** A device reports state with a message of this type, its body a JSON merge patch (RFC 7396). */
const REPORTED = 'nitrogen.reported';
/** What the server sends a device when its desired state changes, and the difference when it subscribes. */
const DESIRED = 'nitrogen.desired';
export const DELTA = 'nitrogen.delta';

/** A device's twin: what its owner wants, and what it last reported, each with a version. */
export interface Twin {
  desired: Record<string, Json>;
  desiredVersion: number;
  reported: Record<string, Json>;
  reportedVersion: number;
  updatedAt?: string;
}

const EMPTY_TWIN: Twin = { desired: {}, desiredVersion: 0, reported: {}, reportedVersion: 0 };

export interface DeviceStateOptions {
  maxStateTypes: number;
  maxTwinBytes: number;
}

/**
 * What the service knows of a device's state, both durable (the registry and the store):
 * - last-known state: the latest message of each type a principal sent, read in one call. The
 *   messages are the store's; the registry keeps which types each principal sent (at most
 *   `devices.maxStateTypes`), written before the first message of a new type is committed, so
 *   an acknowledged message is always found, after a crash too;
 * - the twin: a desired document its owners set (`admin` on the device) and a reported document
 *   the device sets with `nitrogen.reported` messages (JSON merge patches), at most
 *   `devices.maxTwinBytes` together. A change of desired state is sent to the device as a
 *   `nitrogen.desired` command; when it subscribes to its commands it gets a `nitrogen.delta`:
 *   what desired holds that reported does not.
 *
 * `beforeCommit` is the Ingestor's hook: it costs a map lookup per message until a principal
 * sends a type first or reports state. Twin writes are serialized on this instance.
 */
export class DeviceState {
  /** The types each principal sent, as far as this instance loaded them. */
  private readonly known = new Map<string, Set<string>>();
  private chain: Promise<unknown> = Promise.resolve();
  /** Commits server-made messages and fans them out (Ingestor.record); set once the pipeline exists. */
  private record?: (messages: Message[]) => Promise<void>;

  constructor(
    private readonly identity: Identity,
    private readonly registry: Registry,
    private readonly store: Store,
    private readonly options: DeviceStateOptions,
  ) {}

  attach(record: (messages: Message[]) => Promise<void>): void {
    this.record = record;
  }

  /** Undefined (nothing to wait for) unless the batch holds a new type or a report. */
  beforeCommit(messages: readonly Message[]): Promise<void> | undefined {
    let work: Message[] | undefined;
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i]!;
      if (m.type === REPORTED || !this.known.get(m.from)?.has(m.type)) (work ??= []).push(m);
    }
    return work && this.serialized(() => this.apply(work));
  }

  private serialized<T>(work: () => Promise<T>): Promise<T> {
    const next = this.chain.then(work, work);
    this.chain = next.catch(() => {});
    return next;
  }

  private async apply(messages: Message[]): Promise<void> {
    const changedTypes = new Map<string, Set<string>>();
    const twins = new Map<string, Twin>();
    // Principals whose types were read from the registry in this call.
    const fresh = new Set<string>();
    for (const m of messages) {
      let types = this.known.get(m.from);
      // Other instances sharing the registry may have recorded types since this one loaded
      // them: read again before writing, so the record gains this type and loses none of theirs.
      if (!types || (!types.has(m.type) && !fresh.has(m.from))) {
        types = await this.loadTypes(m.from);
        fresh.add(m.from);
      }
      if (!types.has(m.type)) {
        // Past the cap a type is held here only, so its messages take the fast path again.
        if (types.size < this.options.maxStateTypes) changedTypes.set(m.from, types);
        types.add(m.type);
      }
      if (m.type === REPORTED) {
        const twin = twins.get(m.from) ?? (await this.readTwin(m.from));
        twin.reported = mergePatch(twin.reported, m.body as Json) as Record<string, Json>;
        twin.reportedVersion++;
        twin.updatedAt = m.ts;
        this.checkSize(twin, m.from);
        twins.set(m.from, twin);
      }
    }
    const records: RegistryRecord[] = [];
    for (const [id, types] of changedTypes) records.push({ kind: STATE_TYPES, key: id, principal: id, value: [...types].slice(0, this.options.maxStateTypes) });
    for (const [id, twin] of twins) records.push({ kind: TWINS, key: id, principal: id, value: twin });
    if (records.length > 0) await this.registry.putRecords(records);
  }

  /** The types the registry holds for `id`, with those this instance knew already. */
  private async loadTypes(id: string): Promise<Set<string>> {
    const record = await this.registry.getRecord(STATE_TYPES, id);
    const types = new Set([...((record?.value as string[] | undefined) ?? []), ...(this.known.get(id) ?? [])]);
    this.known.set(id, types);
    return types;
  }

  private async readTwin(id: string): Promise<Twin> {
    return structuredClone(((await this.registry.getRecord(TWINS, id))?.value as Twin | undefined) ?? EMPTY_TWIN);
  }

  private checkSize(twin: Twin, id: string): void {
    const bytes = Buffer.byteLength(JSON.stringify({ desired: twin.desired, reported: twin.reported }));
    if (bytes > this.options.maxTwinBytes) {
      throw new NitrogenError('NITROGEN_ERR_QUOTA_EXCEEDED', `the twin of '${id}' would take ${bytes} bytes; at most ${this.options.maxTwinBytes} (devices.maxTwinBytes)`, {
        details: { limit: 'devices.maxTwinBytes' },
      });
    }
  }

  /** The latest message of each type `id` sent, by type; `view` on it. */
  async latest(actor: Principal, id: string): Promise<Record<string, Message>> {
    requireAllowed(this.identity, actor, 'view', id);
    const record = await this.registry.getRecord(STATE_TYPES, id);
    const types = (record?.value as string[] | undefined) ?? [];
    const found = await Promise.all(types.map((type) => this.store.query({ from: [id], type: [type], order: 'desc', limit: 1 })));
    const latest: Record<string, Message> = {};
    // A type whose messages expired (retention) has no latest message any more.
    types.forEach((type, i) => {
      const message = found[i]!.items[0];
      if (message) latest[type] = message;
    });
    return latest;
  }

  /** The twin of `id`, with the delta; `view` on it. */
  async twin(actor: Principal, id: string): Promise<Twin & { delta: Record<string, Json> | null }> {
    requireAllowed(this.identity, actor, 'view', id);
    const twin = await this.readTwin(id);
    return { ...twin, delta: this.deltaOf(twin) };
  }

  /** Applies a JSON merge patch to the desired state of `id` and tells the device; `admin` on it. */
  async setDesired(actor: Principal, id: string, patch: Record<string, Json>): Promise<Twin & { delta: Record<string, Json> | null }> {
    requireAllowed(this.identity, actor, 'admin', id);
    const principal = await this.registry.getPrincipal(id);
    if (!principal) throw new NitrogenError('NITROGEN_ERR_NOT_FOUND', `no principal '${id}'`);
    const twin = await this.serialized(async () => {
      const twin = await this.readTwin(id);
      twin.desired = mergePatch(twin.desired, patch) as Record<string, Json>;
      twin.desiredVersion++;
      twin.updatedAt = new Date().toISOString();
      this.checkSize(twin, id);
      await this.registry.putRecords([{ kind: TWINS, key: id, principal: id, value: twin }]);
      return twin;
    });
    const now = Date.now();
    // A command to the device, from the owner who changed it: stored, and delivered if it listens.
    await this.record?.([{ id: newMessageId(now), type: DESIRED, from: actor.id, to: id, ts: new Date(now).toISOString(), body: { patch, version: twin.desiredVersion } }]);
    return { ...twin, delta: this.deltaOf(twin) };
  }

  /** What the device should change: the `nitrogen.delta` it gets when it subscribes; null when nothing differs. */
  async delta(id: string): Promise<{ delta: Record<string, Json>; desiredVersion: number } | null> {
    const twin = await this.readTwin(id);
    const delta = this.deltaOf(twin);
    return delta && { delta, desiredVersion: twin.desiredVersion };
  }

  private deltaOf(twin: Twin): Record<string, Json> | null {
    return (difference(twin.desired, twin.reported) as Record<string, Json> | undefined) ?? null;
  }
}
