import type { BackpressureGate } from './backpressure.js';
import type { MessageBus } from './bus.js';
import { NitrogenError, isNitrogenError } from './errors.js';
import type { GroupCommit } from './group-commit.js';
import type { IngestQuota } from './ingest-quota.js';
import { bodyMessage, encodeMessage, parseEnvelope, parseJson, type Message, type MessageLimits } from './message.js';
import type { CoreMetrics } from './metrics.js';
import { ADMIN_ID } from './permissions.js';
import type { Identity } from './ports/identity.js';
import type { Principal } from './ports/principal.js';

export interface IngestOptions {
  transport: string;
  /** What the topic says about the messages (MQTT `…/messages/{type}`, `…/commands/{type}`). */
  type?: string;
  to?: string;
  /** Passed to bus listeners, so a transport can skip what it delivers itself. */
  originTag?: unknown;
  /**
   * Refuse at once with NITROGEN_ERR_OVERLOADED when saturated, and with
   * NITROGEN_ERR_QUOTA_EXCEEDED when the sender is over its quota, instead of waiting.
   */
  rejectWhenBusy?: boolean;
}

/** Work that must be durable before a batch is (core/device-state.ts): undefined when there is none. */
export interface CommitHook {
  beforeCommit(messages: readonly Message[]): Promise<void> | undefined;
}

/** Message types the server makes; a client may send only `nitrogen.reported` (docs/api.md, "Twins"). */
const RESERVED_PREFIX = 'nitrogen.';
const CLIENT_RESERVED_TYPES = new Set(['nitrogen.reported']);

/**
 * The ingestion pipeline every transport shares (docs/architecture.md, "Delivery"):
 * validate → authorize → group commit → acknowledge (the caller, once `commit` resolves) → fan out
 * (`fanOut`, called by the transport after its acknowledgement).
 * Nothing of a batch is committed when any message in it is invalid or not allowed.
 */
export class Ingestor {
  constructor(
    private readonly identity: Identity,
    private readonly commits: GroupCommit,
    private readonly bus: MessageBus,
    private readonly limits: MessageLimits,
    private readonly metrics: CoreMetrics,
    private readonly quota: IngestQuota,
    private readonly hook?: CommitHook,
  ) {}

  /** Batches charged ahead of a sender's quota, and how long (ms) their commit waits. Rare: a WeakMap miss is all the hot path pays. */
  private readonly held = new WeakMap<Message[], number>();
  private gate?: BackpressureGate;

  private readonly counters = new Map<string, { inc(n: number): void }>();

  /** Label lookups cost a hash per call; the hot path keeps one child counter per transport. */
  private counter(transport: string): { inc(n: number): void } {
    let counter = this.counters.get(transport);
    if (!counter) this.counters.set(transport, (counter = this.metrics.ingested.labels(transport)));
    return counter;
  }

  get pending(): number {
    return this.commits.pending;
  }

  /** Parses a transport's payload under the JSON limits (`limits.maxJsonDepth`). */
  parse(text: string): unknown {
    return parseJson(text, this.limits.maxJsonDepth);
  }

  /** Validates and authorizes envelopes from `sender`; throws the first problem found. */
  prepare(sender: Principal, inputs: readonly unknown[], options: IngestOptions): Message[] {
    if (inputs.length > this.limits.maxBatch) {
      throw new NitrogenError('NITROGEN_ERR_BATCH_TOO_LARGE', `a batch holds at most ${this.limits.maxBatch} messages, got ${inputs.length}`);
    }
    if (inputs.length === 0) throw new NitrogenError('NITROGEN_ERR_VALIDATION', 'no messages given');
    const now = Date.now();
    const batch = inputs.length > 1;
    const messages = new Array<Message>(inputs.length);
    for (let i = 0; i < inputs.length; i++) {
      messages[i] = parseEnvelope(inputs[i], { sender: sender.id, type: options.type, to: options.to, now, index: batch ? i : undefined });
    }
    return this.checked(sender, messages, options, now);
  }

  /** Like `prepare`, for a payload that is the body of one message of `options.type`. */
  prepareBody(sender: Principal, bodyJson: string, body: unknown, options: IngestOptions & { type: string }): Message[] {
    const now = Date.now();
    return this.checked(sender, [bodyMessage({ sender: sender.id, type: options.type, to: options.to, now, bodyJson, body })], options, now);
  }

  /** Size limits, permission to address each recipient, and the sender's quota. */
  private checked(sender: Principal, messages: Message[], options: IngestOptions, now: number): Message[] {
    const batch = messages.length > 1;
    let recipients: Set<string> | undefined;
    let size = 0;
    for (let i = 0; i < messages.length; i++) {
      const message = messages[i]!;
      const text = encodeMessage(message);
      size += text.length;
      // UTF-8 takes at most 3 bytes per UTF-16 unit, so most messages skip the byte count.
      if (text.length * 3 > this.limits.maxMessageBytes && Buffer.byteLength(text) > this.limits.maxMessageBytes) {
        throw new NitrogenError('NITROGEN_ERR_PAYLOAD_TOO_LARGE', `${batch ? `[${i}]: ` : ''}a message may take at most ${this.limits.maxMessageBytes} bytes`);
      }
      if (message.to !== undefined && message.to !== sender.id) (recipients ??= new Set()).add(message.to);
      // 'n' first: a type that cannot be reserved costs one character comparison.
      if (message.type.charCodeAt(0) === 110 && message.type.startsWith(RESERVED_PREFIX)) this.checkReserved(message, batch ? i : undefined);
    }
    for (const to of recipients ?? []) {
      // A principal may also answer one that may send to it: a device replies to its app. Not
      // the bootstrap admin, which may send to everyone without a record: anyone could address it.
      if (!this.identity.authorize(sender, 'send', to) && (to === ADMIN_ID || !this.identity.authorize({ id: to }, 'send', sender.id))) {
        throw new NitrogenError('NITROGEN_ERR_FORBIDDEN', `'${sender.id}' may not send to '${to}'`);
      }
    }
    // Charged last, for what will be committed. MQTT cannot answer "later", so it is held back.
    const hold = this.quota.charge(sender.id, messages.length, size, now, !options.rejectWhenBusy);
    if (hold > 0) this.held.set(messages, hold);
    return messages;
  }

  private checkReserved(message: Message, index: number | undefined): void {
    const where = index === undefined ? '' : `[${index}]: `;
    if (!CLIENT_RESERVED_TYPES.has(message.type)) throw new NitrogenError('NITROGEN_ERR_VALIDATION', `${where}type: '${RESERVED_PREFIX}…' types are the server's, except nitrogen.reported`, { details: { field: 'type' } });
    if (typeof message.body !== 'object' || message.body === null || Array.isArray(message.body)) {
      throw new NitrogenError('NITROGEN_ERR_VALIDATION', `${where}body: a nitrogen.reported body is a JSON object (a merge patch of the reported state)`, { details: { field: 'body' } });
    }
  }

  /** Holds acknowledgements back while a sink is too far behind (`delivery.backpressure: "slow-acks"`). */
  throttle(gate: BackpressureGate): void {
    this.gate = gate;
  }

  /**
   * Commits prepared messages durably; resolves when they may be acknowledged. Nothing is
   * delivered yet: the transport acknowledges, then calls `fanOut`, so live subscribers never
   * delay an acknowledgement (commit → acknowledge → fan out).
   */
  async commit(messages: Message[], options: IngestOptions): Promise<Message[]> {
    const slow = this.gate?.pass();
    if (slow) await slow;
    const hold = this.held.get(messages);
    if (hold !== undefined) await new Promise((resolve) => setTimeout(resolve, hold));
    const before = this.hook?.beforeCommit(messages);
    if (before) await before;
    await this.commits.submit(messages, { reject: options.rejectWhenBusy });
    this.counter(options.transport).inc(messages.length);
    return messages;
  }

  /** Hands committed and acknowledged messages to live subscribers and the sink runners. */
  fanOut(messages: readonly Message[], options: IngestOptions): void {
    this.bus.publish(messages, { transport: options.transport, tag: options.originTag });
  }

  /**
   * Commits messages the server made itself (presence events, desired state), then fans them
   * out: they are not validated, charged to a quota, nor sent as any principal's input.
   */
  async record(messages: Message[], transport: string): Promise<void> {
    await this.commit(messages, { transport });
    this.fanOut(messages, { transport });
  }

  /** `prepare` then `commit`: the caller acknowledges, then calls `fanOut`. */
  async ingest(sender: Principal, inputs: readonly unknown[], options: IngestOptions): Promise<Message[]> {
    try {
      return await this.commit(this.prepare(sender, inputs, options), options);
    } catch (err) {
      this.rejected(options.transport, err);
      throw err;
    }
  }

  /** Counts a refused message by its error code, and returns the code. */
  rejected(transport: string, err: unknown): string {
    const code = isNitrogenError(err) ? err.code : 'NITROGEN_ERR_INTERNAL';
    this.metrics.rejected.inc({ transport, code });
    return code;
  }
}
