// A sending link (AMQP 1.0 §2.6, §2.7.5). send() encodes straight into the
// connection's output buffer when credit and session window allow, and
// queues (bounded) otherwise. Messages larger than the peer's max-frame-size
// are split into transfer frames with more=true, paused when the session
// window closes and resumed on the next flow.
import { Condition, DeliveryError, DisconnectedError, EncodeError, LinkError, SendQueueFullError, type AmqpError } from './errors.js';
import { Deque } from './deque.js';
import { beginFrame, describeFrame, endFrame, FrameType } from './frames.js';
import { encodeComposite } from './codec/described.js';
import { Link } from './link.js';
import { log } from './log.js';
import { encodeMessage, type Message } from './message.js';
import type { DeliveryState, Outcome, Target } from './messaging.js';
import { ReceiverSettleMode, Role, SenderSettleMode, TransferType, type Attach, type Flow, type Transfer } from './performatives.js';
import type { SenderPolicy } from './policy.js';
import type { Session, Tracked } from './session.js';

export interface SenderOptions extends Partial<Omit<SenderPolicy, 'target'>> {
  name?: string;
  target?: Partial<Target>;
  properties?: Record<string, unknown>;
}

export interface SendOptions {
  /** §2.7.5 message-format, e.g. 0x80013700 for an Event Hubs batch. */
  messageFormat?: number;
}

class Outgoing implements Tracked {
  deliveryId = -1;
  constructor(
    readonly link: Sender,
    readonly message: Message | undefined,
    readonly raw: Uint8Array | undefined,
    readonly format: number,
    readonly resolve: (s: Outcome) => void,
    readonly reject: (e: Error) => void,
  ) {}

  onDisposition(state: DeliveryState | undefined, settled: boolean): void {
    this.link.onOutcome(this, state, settled);
  }
}

const SETTLE = { unsettled: SenderSettleMode.Unsettled, settled: SenderSettleMode.Settled, mixed: SenderSettleMode.Mixed } as const;

export class Sender extends Link {
  readonly role = Role.Sender;
  readonly options: SenderPolicy & SenderOptions;
  private readonly queue = new Deque<Outgoing>();
  /** Sent and not yet settled, in send order (re-sent in that order after a reconnect). */
  private readonly inflight = new Set<Outgoing>();
  private partial: { d: Outgoing; payload: Buffer; offset: number } | null = null;
  private drainRequested = false;
  private tagCounter = 0;

  constructor(session: Session, name: string, address: string, options: SenderOptions) {
    super(session, name, address);
    const p = session.connection.policy.sender;
    this.options = { ...p, ...options, target: { ...p.target, ...options.target } };
  }

  protected attachFields(): Partial<Attach> {
    return {
      sndSettleMode: SETTLE[this.options.settleMode],
      rcvSettleMode: this.options.rcvSettleMode === 'second' ? ReceiverSettleMode.Second : ReceiverSettleMode.First,
      source: { address: this.session.connection.containerId },
      target: { address: this.address, ...this.options.target },
      initialDeliveryCount: 0,
      properties: this.options.properties,
    };
  }

  protected onAttached(): void {
    this.deliveryCount = 0;
    this.credit = 0;
  }

  /** Messages waiting for credit or for the connection. */
  get queued(): number {
    return this.queue.length;
  }
  /** Messages sent and not yet settled by the peer. */
  get unsettled(): number {
    return this.inflight.size;
  }

  /** Sends a message; resolves with the `accepted` outcome, rejects with DeliveryError or LinkError. */
  send(message: Message, options?: SendOptions): Promise<Outcome> {
    return this.enqueue(message, undefined, options?.messageFormat ?? this.options.messageFormat);
  }

  /** Sends pre-encoded message bytes as they are, with the given message-format (§2.7.5). */
  sendRaw(bytes: Uint8Array, options?: SendOptions): Promise<Outcome> {
    return this.enqueue(undefined, bytes, options?.messageFormat ?? this.options.messageFormat);
  }

  private enqueue(message: Message | undefined, raw: Uint8Array | undefined, format: number): Promise<Outcome> {
    return new Promise<Outcome>((resolve, reject) => {
      if (this.state === 'closed' || this.state === 'detaching') {
        reject(this.error ?? new LinkError({ condition: Condition.DetachForced, description: 'sender is closed' }));
        return;
      }
      const d = new Outgoing(this, message, raw, format, resolve, reject);
      if (this.queue.length === 0 && this.partial === null && this.canStart()) {
        this.start(d);
        return;
      }
      if (this.queue.length >= this.options.maxQueued) {
        reject(new SendQueueFullError(this.options.maxQueued));
        return;
      }
      this.queue.push(d);
    });
  }

  private canStart(): boolean {
    return this.state === 'attached' && this.credit > 0 && this.session.canTransfer();
  }

  /** Sends what credit, window and socket allow. */
  pump(): void {
    for (;;) {
      if (this.partial !== null) {
        if (!this.continuePartial()) return;
        continue;
      }
      if (this.queue.length === 0 || !this.canStart()) break;
      this.start(this.queue.shift()!);
    }
    if (this.drainRequested && this.queue.length === 0 && this.state === 'attached' && this.credit > 0) {
      // §2.6.7 drain: nothing to send, so use up the credit and tell the receiver.
      this.deliveryCount = (this.deliveryCount + this.credit) >>> 0;
      this.credit = 0;
      this.drainRequested = false;
      this.sendFlow(true);
    }
  }

  /** Writes the first (often only) transfer frame of a delivery. */
  private start(d: Outgoing): void {
    const session = this.session;
    const conn = session.connection;
    const w = conn.out;
    const settled = this.options.settleMode === 'settled';
    const tag = Buffer.allocUnsafe(4);
    tag.writeUInt32BE((this.tagCounter = (this.tagCounter + 1) >>> 0), 0);
    const transfer: Transfer = { handle: this.handle, deliveryId: session.nextDeliveryId, deliveryTag: tag, messageFormat: d.format, settled };
    const frameStart = beginFrame(w, FrameType.Amqp, session.channel);
    encodeComposite(w, TransferType, transfer);
    const payloadStart = w.pos;
    try {
      if (d.message !== undefined) encodeMessage(w, d.message);
      else w.bytes(d.raw!);
    } catch (e) {
      w.pos = frameStart;
      d.reject(e instanceof Error ? e : new EncodeError(String(e)));
      return;
    }
    const size = w.pos - payloadStart;
    const max = this.remote?.maxMessageSize;
    if (max !== undefined && max > 0n && BigInt(size) > BigInt(max)) {
      w.pos = frameStart;
      d.reject(new LinkError({ condition: Condition.MessageSizeExceeded, description: `message of ${size} bytes exceeds the peer's max-message-size ${max}` }));
      return;
    }
    d.deliveryId = session.nextDeliveryId;
    session.nextDeliveryId = (session.nextDeliveryId + 1) >>> 0;
    this.deliveryCount = (this.deliveryCount + 1) >>> 0;
    this.credit--;
    if (!settled) {
      session.outgoing.set(d.deliveryId, d);
      this.inflight.add(d);
    }
    if (w.pos - frameStart <= conn.maxFrameSize) {
      endFrame(w, frameStart);
      this.frameSent(transfer, size);
      if (settled) d.resolve({ type: 'accepted' });
    } else {
      // Too big for one frame: take the encoded payload out and send it in pieces.
      this.partial = { d, payload: Buffer.from(w.buf.subarray(payloadStart, w.pos)), offset: 0 };
      w.pos = frameStart;
      this.continuePartial(transfer);
    }
    conn.scheduleFlush();
  }

  /** Writes further frames of a split delivery; false if the window or socket stopped it. */
  private continuePartial(first?: Transfer): boolean {
    const p = this.partial!;
    const session = this.session;
    const w = session.connection.out;
    const max = session.connection.maxFrameSize;
    while (first !== undefined || session.canTransfer()) {
      const transfer: Transfer = first ?? { handle: this.handle };
      first = undefined;
      const frameStart = beginFrame(w, FrameType.Amqp, session.channel);
      const mark = w.pos;
      encodeComposite(w, TransferType, { ...transfer, more: true });
      const room = max - (w.pos - frameStart);
      const n = Math.min(room, p.payload.length - p.offset);
      const last = p.offset + n === p.payload.length;
      if (last) {
        w.pos = mark;
        encodeComposite(w, TransferType, transfer);
      }
      w.bytes(p.payload.subarray(p.offset, p.offset + n));
      endFrame(w, frameStart);
      p.offset += n;
      this.frameSent({ ...transfer, more: !last }, n);
      if (last) {
        this.partial = null;
        if (transfer.settled ?? this.options.settleMode === 'settled') p.d.resolve({ type: 'accepted' });
        session.connection.scheduleFlush();
        return true;
      }
    }
    session.connection.scheduleFlush();
    return false;
  }

  private frameSent(transfer: Transfer, payloadSize: number): void {
    const s = this.session;
    s.nextOutgoingId = (s.nextOutgoingId + 1) >>> 0;
    s.remoteIncomingWindow--;
    if (log.frames.enabled) log.frames(describeFrame('->', s.channel, 'transfer', transfer, payloadSize));
  }

  /** §3.4: the receiver's outcome for one of our deliveries. */
  onOutcome(d: Outgoing, state: DeliveryState | undefined, settled: boolean): void {
    if (state === undefined || state.type === 'received') {
      if (settled) {
        this.inflight.delete(d);
        d.resolve({ type: 'accepted' });
      } // settled without outcome: the peer's default
      return;
    }
    this.inflight.delete(d);
    this.session.outgoing.delete(d.deliveryId);
    // In receiver-settles-second mode, or when a peer leaves the settling to us, we settle (§2.6.12).
    if (!settled) this.session.dispose(Role.Sender, d.deliveryId, true, state);
    if (state.type === 'accepted') d.resolve(state);
    else d.reject(new DeliveryError(state.type, state, state.type === 'rejected' ? state.error : undefined));
  }

  /** §2.6.7: the receiver's view of the link gives us our credit. */
  protected onFlow(f: Flow): void {
    const theirCount = f.deliveryCount ?? 0; // absent until they have seen our initial-delivery-count, which is 0
    this.credit = Math.max(0, (theirCount + (f.linkCredit ?? 0) - this.deliveryCount) | 0);
    this.drainRequested = f.drain ?? false;
    this.pump();
    if (f.echo) this.sendFlow(false);
  }

  private sendFlow(drain: boolean): void {
    this.session.sendFlow({ handle: this.handle, deliveryCount: this.deliveryCount, linkCredit: this.credit, available: this.queue.length, drain });
  }

  protected failPending(err: AmqpError, final: boolean): void {
    const wasPartial = this.partial?.d;
    this.partial = null;
    if (!final) {
      // Connection lost: what was sent but not settled is re-sent first, or failed, as policy says.
      const unsettled = [...this.inflight];
      if (wasPartial && !this.inflight.has(wasPartial)) unsettled.push(wasPartial);
      this.inflight.clear();
      if (this.options.unsettledOnReconnect === 'resend') this.queue.unshiftAll(unsettled);
      else for (const d of unsettled) d.reject(new DisconnectedError(`connection lost before the peer settled the delivery: ${err.message}`));
      return;
    }
    for (const d of this.inflight) d.reject(err);
    this.inflight.clear();
    if (wasPartial) wasPartial.reject(err);
    for (const d of this.queue.drain()) d.reject(err);
  }
}
