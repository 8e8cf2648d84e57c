// A receiving link (AMQP 1.0 §2.6, §2.7.5). Transfer frames are reassembled
// by keeping their payload views and joining them once (linear, whatever the
// number of frames); memory is bounded by credit and max message size.
// Deliveries are read with receive() or `for await`, and settled with
// accept/reject/release/modify; dispositions for consecutive deliveries are
// sent as one range.
import { Condition, LinkError, type AmqpError, type ErrorCondition } from './errors.js';
import { Deque } from './deque.js';
import { DetachType, ReceiverSettleMode, Role, type Attach, type Flow, type Transfer } from './performatives.js';
import { Link } from './link.js';
import { log } from './log.js';
import { decodeMessage, type Message } from './message.js';
import type { DeliveryState, Outcome, Source } from './messaging.js';
import type { ReceiverPolicy } from './policy.js';
import type { Session, Tracked } from './session.js';

export interface ReceiverOptions extends Partial<Omit<ReceiverPolicy, 'source'>> {
  name?: string;
  source?: Partial<Source>;
  properties?: Record<string, unknown>;
}

export class Delivery implements Tracked {
  /** True once settled, by the sender (pre-settled) or by us. */
  settled: boolean;
  private decoded: Message | undefined;

  constructor(
    readonly link: Receiver,
    readonly id: number,
    readonly tag: Buffer,
    readonly messageFormat: number,
    /** The encoded message, as received. */
    readonly payload: Buffer,
    remotelySettled: boolean,
    private readonly epoch: number,
  ) {
    this.settled = remotelySettled;
  }

  /** The decoded message (decoded on first access; throws DecodeError on a malformed one). */
  get message(): Message {
    return (this.decoded ??= decodeMessage(this.payload));
  }

  accept(): void {
    this.settle({ type: 'accepted' });
  }
  reject(error?: ErrorCondition): void {
    this.settle({ type: 'rejected', error });
  }
  release(): void {
    this.settle({ type: 'released' });
  }
  modify(options: { deliveryFailed?: boolean; undeliverableHere?: boolean; messageAnnotations?: Record<string, unknown> } = {}): void {
    this.settle({ type: 'modified', ...options });
  }

  /** Sends the outcome (§2.6.12). A delivery from before a reconnect cannot be settled; the peer re-delivers it. */
  private settle(outcome: Outcome): void {
    if (this.settled) return;
    const session = this.link.session;
    if (this.epoch !== session.connection.epoch || session.state !== 'mapped') return;
    const first = !this.link.settlesSecond;
    this.settled = first;
    if (first) session.incoming.delete(this.id);
    session.dispose(Role.Receiver, this.id, first, outcome);
  }

  onDisposition(_state: DeliveryState | undefined, settled: boolean): void {
    if (settled) this.settled = true; // the sender settled after our outcome (receiver-settles-second)
  }
}

export class Receiver extends Link {
  readonly role = Role.Receiver;
  readonly options: ReceiverPolicy & ReceiverOptions;
  private readonly buffer = new Deque<Delivery>();
  private waiter: { resolve: (d: Delivery | null) => void; reject: (e: Error) => void } | null = null;
  private partial: { first: Transfer; chunks: Buffer[]; size: number } | null = null;

  constructor(session: Session, name: string, address: string, options: ReceiverOptions) {
    super(session, name, address);
    const p = session.connection.policy.receiver;
    this.options = { ...p, ...options, source: { ...p.source, ...options.source } };
  }

  protected attachFields(): Partial<Attach> {
    return {
      sndSettleMode: undefined,
      rcvSettleMode: this.options.rcvSettleMode === 'second' ? ReceiverSettleMode.Second : ReceiverSettleMode.First,
      source: { address: this.address, ...this.options.source },
      target: { address: this.session.connection.containerId },
      maxMessageSize: this.options.maxMessageSize,
      properties: this.options.properties,
    };
  }

  /** Receiver-settles-second (§2.8.3) only if we asked for it and the sending peer's attach agreed. */
  settlesSecond = false;

  protected onAttached(remote: Attach): void {
    this.settlesSecond = this.options.rcvSettleMode === 'second' && remote.rcvSettleMode === ReceiverSettleMode.Second;
    this.deliveryCount = remote.initialDeliveryCount ?? 0;
    this.credit = 0;
    this.partial = null;
    if (this.options.creditStrategy === 'auto') this.topUp();
  }

  /** Deliveries received and not yet taken by receive(). */
  get buffered(): number {
    return this.buffer.length;
  }

  /** Grants `n` more credit (§2.6.7). */
  addCredit(n: number): void {
    this.credit += n;
    this.sendFlow();
  }

  /** The next delivery; null once the application closed the link, its session or its connection; rejects with the error if the peer ended them. */
  receive(): Promise<Delivery | null> {
    const d = this.buffer.shift();
    if (d !== undefined) {
      this.maybeTopUp();
      return Promise.resolve(d);
    }
    if (this.state === 'closed') return this.closedLocally ? Promise.resolve(null) : Promise.reject(this.error!);
    if (this.waiter) return Promise.reject(new TypeError('receive() is already pending on this receiver'));
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Delivery, void, undefined> {
    for (;;) {
      const d = await this.receive();
      if (d === null) return;
      yield d;
    }
  }

  onTransfer(t: Transfer, payload: Buffer): void {
    if (this.state !== 'attached') return;
    let p = this.partial;
    if (p === null) {
      if (t.deliveryId === undefined) {
        this.detachWith(Condition.InvalidField, 'first transfer without delivery-id');
        return;
      }
      if (this.credit <= 0) {
        this.detachWith(Condition.TransferLimitExceeded, 'transfer without credit');
        return;
      }
      p = this.partial = { first: t, chunks: [], size: 0 };
    }
    if (t.aborted) {
      this.partial = null;
      this.consumeCredit();
      return;
    } // §2.6.14: discard an aborted delivery
    p.size += payload.length;
    if (p.size > this.options.maxMessageSize) {
      this.detachWith(Condition.MessageSizeExceeded, `message exceeds ${this.options.maxMessageSize} bytes`);
      return;
    }
    p.chunks.push(payload);
    if (t.more) return;
    this.partial = null;
    this.consumeCredit();
    const first = p.first;
    const body = p.chunks.length === 1 ? p.chunks[0] : Buffer.concat(p.chunks, p.size);
    const settled = (first.settled ?? false) || (t.settled ?? false);
    const d = new Delivery(this, first.deliveryId!, first.deliveryTag ?? Buffer.alloc(0), first.messageFormat ?? 0, body, settled, this.session.connection.epoch);
    if (!settled) this.session.incoming.set(d.id, d);
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w.resolve(d);
      this.maybeTopUp();
    } else this.buffer.push(d);
  }

  private consumeCredit(): void {
    this.deliveryCount = (this.deliveryCount + 1) >>> 0;
    this.credit--;
    this.maybeTopUp();
  }

  /** 'auto' credit: refill once credit plus unread deliveries fall to refillAt of the target. */
  private maybeTopUp(): void {
    const o = this.options;
    if (o.creditStrategy !== 'auto' || this.state !== 'attached') return;
    if (this.credit + this.buffer.length <= o.credit * o.refillAt) this.topUp();
  }

  private topUp(): void {
    const want = Math.max(0, this.options.credit - this.buffer.length);
    if (want === this.credit) return;
    this.credit = want;
    this.sendFlow();
  }

  private sendFlow(): void {
    this.session.sendFlow({ handle: this.handle, deliveryCount: this.deliveryCount, linkCredit: this.credit });
  }

  protected onFlow(f: Flow): void {
    if (f.echo) this.sendFlow();
  }

  private detachWith(condition: string, description: string): void {
    log.link('%s: %s', this.name, description);
    this.session.connection.sendFrame(this.session.channel, DetachType, { handle: this.handle, closed: true, error: { condition, description } });
    this.fail(new LinkError({ condition, description }), true);
  }

  protected failPending(err: AmqpError, final: boolean): void {
    this.partial = null;
    if (!final) {
      // Unsettled deliveries from the lost connection will be re-delivered; keep only pre-settled ones.
      const keep = this.buffer.drain().filter((d) => d.settled);
      for (const d of keep) this.buffer.push(d);
      return;
    }
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      if (this.closedLocally) w.resolve(null);
      else w.reject(err);
    }
  }
}
