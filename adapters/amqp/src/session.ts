// The session (AMQP 1.0 §2.5): a channel, transfer windows (§2.5.6), link
// handles, and the delivery-ids of unsettled deliveries both ways, through
// which dispositions find their deliveries. After a reconnect the same
// Session object begins again with fresh counters and re-attaches its links.
import { Condition, OperationTimeoutError, SessionError, type AmqpError, type ErrorCondition } from './errors.js';
import type { Connection } from './connection.js';
import { dispatch, type Frame, type FrameHandlers } from './frames.js';
import type { Link } from './link.js';
import { log } from './log.js';
import type { DeliveryState } from './messaging.js';
import { BeginType, DispositionType, EndType, FlowType, type Attach, type Begin, type Disposition, type Flow, type PerformativeBodies, type Transfer } from './performatives.js';
import { Receiver, type ReceiverOptions } from './receiver.js';
import { Sender, type SenderOptions } from './sender.js';

/** A delivery this session must be able to find by delivery-id when a disposition names it. */
export interface Tracked {
  link: Link;
  onDisposition(state: DeliveryState | undefined, settled: boolean): void;
}

interface PendingDisposition {
  role: boolean;
  first: number;
  last: number;
  settled: boolean;
  state: DeliveryState | undefined;
}

/** The performatives that belong to a session; open and close stay with the connection. */
type SessionBodies = Omit<PerformativeBodies, 'open' | 'close'>;

export class Session {
  state: 'unmapped' | 'beginning' | 'mapped' | 'ending' | 'ended' = 'unmapped';
  remoteChannel = -1;
  // §2.5.6 session flow control state.
  nextOutgoingId = 0;
  nextDeliveryId = 0;
  nextIncomingId = 0;
  incomingWindow: number;
  remoteIncomingWindow = 0;
  remoteOutgoingWindow = 0;
  /** Our outgoing unsettled deliveries, and the peer's, by delivery-id. */
  readonly outgoing = new Map<number, Tracked>();
  readonly incoming = new Map<number, Tracked>();

  private readonly links = new Set<Link>();
  private readonly handles = new Map<number, Link>();
  private readonly remoteHandles = new Map<number, Link>();
  private pending: PendingDisposition | null = null;
  private began: { resolve: () => void; reject: (e: Error) => void } | null = null;
  private begun: Promise<void> = Promise.resolve();
  private ended: (() => void) | null = null;
  private linkCount = 0;

  constructor(
    readonly connection: Connection,
    readonly channel: number,
  ) {
    this.incomingWindow = connection.policy.incomingWindow;
  }

  /** Sends begin and waits for the peer's (§2.5.5); also used to re-begin after a reconnect. */
  begin(): Promise<void> {
    const p = this.connection.policy;
    this.state = 'beginning';
    this.nextOutgoingId = 0;
    this.nextDeliveryId = 0;
    this.incomingWindow = p.incomingWindow;
    this.handles.clear();
    this.remoteHandles.clear();
    // A begin cut short by a dropped socket is completed by the next one, on the same promise.
    if (this.began === null) {
      const done = new Promise<void>((resolve, reject) => {
        this.began = { resolve, reject };
      });
      this.begun = withTimeout(done, p.operationTimeout, 'begin');
    }
    const begin: Begin = { nextOutgoingId: 0, incomingWindow: p.incomingWindow, outgoingWindow: p.outgoingWindow };
    this.connection.sendFrame(this.channel, BeginType, begin);
    return this.begun;
  }

  async createSender(address: string, options: SenderOptions = {}): Promise<Sender> {
    const sender = new Sender(this, options.name ?? `${this.connection.containerId}:sender:${++this.linkCount}`, address, options);
    this.links.add(sender);
    await sender.attach();
    return sender;
  }

  async createReceiver(address: string, options: ReceiverOptions = {}): Promise<Receiver> {
    const receiver = new Receiver(this, options.name ?? `${this.connection.containerId}:receiver:${++this.linkCount}`, address, options);
    this.links.add(receiver);
    await receiver.attach();
    return receiver;
  }

  /** Ends the session (§2.5.5) after its links. */
  async end(error?: ErrorCondition): Promise<void> {
    const reason = new SessionError({ condition: Condition.ConnectionForced, description: 'session ended locally' });
    if (this.state !== 'mapped') {
      this.state = 'ended';
      this.fail(reason, true, true);
      this.connection.releaseChannel(this);
      return;
    }
    this.fail(reason, true, true);
    this.state = 'ending';
    const done = new Promise<void>((resolve) => {
      this.ended = resolve;
    });
    this.connection.sendFrame(this.channel, EndType, { error });
    await withTimeout(done, this.connection.policy.operationTimeout, 'end').catch(() => undefined);
    this.connection.releaseChannel(this);
  }

  // ---- handles ----

  allocateHandle(link: Link): number {
    let h = 0;
    while (this.handles.has(h)) h++;
    this.handles.set(h, link);
    return h;
  }

  releaseHandle(link: Link): void {
    if (this.handles.get(link.handle) === link) this.handles.delete(link.handle);
    if (this.remoteHandles.get(link.remoteHandle) === link) this.remoteHandles.delete(link.remoteHandle);
  }

  forget(link: Link): void {
    this.links.delete(link);
    this.releaseHandle(link);
  }

  // ---- incoming frames ----

  /** §2.7: what each performative does to the session, by name; the context is the peer's channel. */
  private readonly handlers: FrameHandlers<SessionBodies, number> = {
    begin: (b, _payload, remoteChannel) => this.onBegin(b, remoteChannel),
    attach: (a) => this.onAttach(a),
    flow: (f) => this.onFlow(f),
    transfer: (t, payload) => this.onTransfer(t, payload),
    disposition: (d) => this.onDisposition(d),
    detach: (d) => this.remoteHandles.get(d.handle)?.onDetach(d),
    end: (e) => this.onEnd(e.error),
  };

  onFrame(f: Frame<SessionBodies>, remoteChannel: number): void {
    // After our end (§2.5.5), frames in flight from the peer are discarded until its end arrives.
    if (this.state === 'ending' && f.name !== 'end') return;
    dispatch(this.handlers, f, remoteChannel);
  }

  private onBegin(b: Begin, remoteChannel: number): void {
    this.remoteChannel = remoteChannel;
    this.nextIncomingId = b.nextOutgoingId;
    this.remoteIncomingWindow = b.incomingWindow;
    this.remoteOutgoingWindow = b.outgoingWindow;
    this.state = 'mapped';
    log.connection('session %d mapped to remote channel %d', this.channel, remoteChannel);
    this.began?.resolve();
    this.began = null;
    if (this.connection.epoch > 1) for (const l of this.links) if (l.wantsAttach) void l.attach().catch(() => undefined);
  }

  private onAttach(a: Attach): void {
    const link = [...this.handles.values()].find((l) => l.name === a.name && l.role !== a.role);
    if (!link) {
      this.error(Condition.NotFound, `attach for unknown link ${a.name}`);
      return;
    }
    this.remoteHandles.set(a.handle, link);
    link.onAttach(a);
  }

  private onTransfer(t: Transfer, payload: Buffer): void {
    // §2.5.6: every transfer frame consumes one unit of our incoming window.
    if (this.incomingWindow === 0) {
      this.error(Condition.WindowViolation, 'transfer beyond incoming-window');
      return;
    }
    this.nextIncomingId = (this.nextIncomingId + 1) >>> 0;
    this.incomingWindow--;
    const link = this.remoteHandles.get(t.handle);
    if (!(link instanceof Receiver)) {
      this.error(Condition.UnattachedHandle, `transfer on handle ${t.handle}`);
      return;
    }
    link.onTransfer(t, payload);
    if (this.incomingWindow <= this.connection.policy.incomingWindow / 2) {
      this.incomingWindow = this.connection.policy.incomingWindow;
      this.sendFlow();
    }
  }

  private onDisposition(d: Disposition): void {
    // The peer's role says whose deliveries it names: a receiver disposes of ours.
    const map = d.role ? this.outgoing : this.incoming;
    const first = d.first;
    const last = d.last ?? first;
    const span = ((last - first) >>> 0) + 1;
    if (span <= map.size) {
      for (let i = 0, id = first; i < span; i++, id = (id + 1) >>> 0) this.settleTracked(map, id, d);
    } else {
      // A range wider than what we track (possibly hostile, e.g. 0..2^32-1): walk the map instead.
      for (const id of [...map.keys()]) if ((id - first) >>> 0 < span) this.settleTracked(map, id, d);
    }
  }

  private settleTracked(map: Map<number, Tracked>, id: number, d: Disposition): void {
    const t = map.get(id);
    if (t === undefined) return;
    if (d.settled) map.delete(id);
    t.onDisposition(d.state, d.settled ?? false);
  }

  private onFlow(f: Flow): void {
    // §2.5.6: remote-incoming-window = next-incoming-id(flow) + incoming-window(flow) - next-outgoing-id(ours).
    this.remoteIncomingWindow = ((f.nextIncomingId ?? 0) + f.incomingWindow - this.nextOutgoingId) >>> 0;
    this.remoteOutgoingWindow = f.outgoingWindow;
    if (f.handle !== undefined) {
      const link = this.remoteHandles.get(f.handle);
      if (!link) {
        this.error(Condition.UnattachedHandle, `flow on handle ${f.handle}`);
        return;
      }
      link.onLinkFlow(f);
    } else {
      if (f.echo) this.sendFlow();
      this.pump();
    }
  }

  private onEnd(error: ErrorCondition | undefined): void {
    if (this.state === 'ending') {
      this.state = 'ended';
      this.ended?.();
      return;
    }
    this.connection.sendFrame(this.channel, EndType, {});
    this.state = 'ended';
    this.fail(new SessionError(error ?? { condition: Condition.ConnectionForced, description: 'session ended by peer' }), true);
    this.connection.releaseChannel(this);
  }

  /** A protocol violation by the peer: end the session with an error (§2.5.5). */
  private error(condition: string, description: string): void {
    log.connection('session %d error %s: %s', this.channel, condition, description);
    this.connection.sendFrame(this.channel, EndType, { error: { condition, description } });
    this.state = 'ending';
    this.fail(new SessionError({ condition, description }), true);
  }

  // ---- outgoing ----

  /** Session flow (§2.7.4), optionally carrying one link's state. */
  sendFlow(link?: Partial<Flow>): void {
    if (this.state !== 'mapped') return;
    const flow: Flow = {
      nextIncomingId: this.nextIncomingId,
      incomingWindow: this.incomingWindow,
      nextOutgoingId: this.nextOutgoingId,
      outgoingWindow: this.connection.policy.outgoingWindow,
      ...link,
    };
    this.connection.sendFrame(this.channel, FlowType, flow);
  }

  /** Whether one more transfer frame may go out now (§2.5.6 and socket backpressure). */
  canTransfer(): boolean {
    return this.state === 'mapped' && this.remoteIncomingWindow > 0 && this.connection.writable;
  }

  /** Queues a disposition; consecutive ids with the same outcome go out as one range at the next flush. */
  dispose(role: boolean, id: number, settled: boolean, state: DeliveryState | undefined): void {
    const p = this.pending;
    if (p && p.role === role && p.settled === settled && p.state?.type === 'accepted' && state?.type === 'accepted' && (p.last + 1) >>> 0 === id) {
      p.last = id;
      return;
    }
    this.flushDispositions();
    this.pending = { role, first: id, last: id, settled, state };
    this.connection.scheduleFlush();
  }

  flushDispositions(): void {
    const p = this.pending;
    if (!p) return;
    this.pending = null;
    if (this.state !== 'mapped') return;
    const d: Disposition = { role: p.role, first: p.first, last: p.last === p.first ? undefined : p.last, settled: p.settled, state: p.state };
    this.connection.sendFrame(this.channel, DispositionType, d);
  }

  pump(): void {
    for (const l of this.links) if (l instanceof Sender) l.pump();
  }

  // ---- failure ----

  /** The socket is gone: everything on the wire is forgotten until the next begin. */
  onTransportLost(err: AmqpError): void {
    this.state = 'unmapped';
    this.pending = null;
    this.outgoing.clear();
    this.incoming.clear();
    for (const l of this.links) l.onTransportLost(err);
  }

  /** The session cannot go on: reject everything waiting on it (`local`: the application ended it). */
  fail(err: AmqpError, final: boolean, local = false): void {
    this.began?.reject(err);
    this.began = null;
    this.ended?.();
    this.outgoing.clear();
    this.incoming.clear();
    for (const l of [...this.links]) l.fail(err, final, local);
  }
}

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new OperationTimeoutError(`${what} not answered within ${ms} ms`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}
