// The connection (AMQP 1.0 §2.4): socket, protocol headers, SASL, open/close,
// heartbeats, and reconnection. A Connection outlives its sockets: once it
// has been open, a dropped socket is replaced (with backoff) and its sessions
// begin again and re-attach their links, so senders and receivers held by the
// application keep working. Connecting, the first time and after a drop, is
// one bounded step: socket, SASL, open and the sessions' begin, all within
// connectTimeout. What it writes goes through Outbound (outbound.ts), what
// it reads through Inbound (inbound.ts).
import { EventEmitter } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import { randomUUID } from 'node:crypto';
import type { Composite } from './codec/described.js';
import type { Writer } from './codec/encoder.js';
import { AmqpError, Condition, ConnectionError, OperationTimeoutError, type ErrorCondition } from './errors.js';
import { AMQP_HEADER, describeFrame, FrameDecoder, FramingError, FrameType, MIN_MAX_FRAME_SIZE, SASL_HEADER } from './frames.js';
import { Backoff } from './backoff.js';
import { Heartbeat } from './heartbeat.js';
import { Inbound } from './inbound.js';
import { log } from './log.js';
import { Outbound } from './outbound.js';
import { CloseType, OpenType, Performatives, type Open } from './performatives.js';
import type { ClientPolicy } from './policy.js';
import { Sasl, SaslClient, SaslFrames } from './sasl.js';
import type { Endpoint } from './endpoint.js';
import { Session } from './session.js';
import type { Sender, SenderOptions } from './sender.js';
import type { Receiver, ReceiverOptions } from './receiver.js';

export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'closing' | 'closed';
type Socket = net.Socket | tls.TLSSocket;

/** How far a socket got; errors and timeouts say what was awaited. */
type Stage = 'socket' | 'sasl' | 'open' | 'begin' | 'up';
const AWAITING: Record<Stage, string> = {
  socket: 'the TCP/TLS connection',
  sasl: 'the SASL exchange',
  open: "the peer's open",
  begin: "the peer's begin (it had sent open)",
  up: '',
};

const amqpFrames = new FrameDecoder('AMQP', Performatives);
const saslFrames = new FrameDecoder('SASL', SaslFrames);
/**
 * §5.3.1 caps a SASL frame at MIN-MAX-FRAME-SIZE (512 bytes); we accept up to 4 KiB, for servers with
 * long mechanism lists or challenges, which still bounds what a peer can make us hold before AMQP begins.
 */
const SASL_MAX_FRAME_SIZE = 4096;

export class Connection extends EventEmitter {
  state: ConnectionState = 'connecting';
  readonly containerId: string;
  /** The peer's open (§2.7.1), with defaults applied; set while a socket is open. */
  remote: Open | null = null;
  /** Incremented with every new socket; deliveries from an earlier one can no longer be settled. */
  epoch = 0;
  /** Why the connection ended, once closed. */
  error: AmqpError | undefined;

  private socket: Socket | null = null;
  private stage: Stage = 'socket';
  private readonly inbound = new Inbound(
    (t, ch, f, s) => this.onFrame(t, ch, f, s),
    (h) => {
      if (h === AMQP_HEADER) this.outbound.owesReply();
    },
  );
  private readonly outbound = new Outbound(
    () => {
      for (const s of this.sessions) s?.flushDispositions();
    },
    () => {
      this.heartbeat.wrote = true;
    },
  );
  private sasl: SaslClient | null = null;
  private readonly sessions: Array<Session | undefined> = [];
  private readonly byRemoteChannel = new Map<number, Session>();
  private defaultSession: Promise<Session> | null = null;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private connectTimer: NodeJS.Timeout | null = null;
  private readonly heartbeat = new Heartbeat(
    () => this.outbound.heartbeat(),
    (ms) => this.fatal(new ConnectionError({ condition: Condition.ResourceLimitExceeded, description: `no frame from peer within idle-time-out ${ms} ms` }, 'ERR_AMQP_IDLE_TIMEOUT')),
  );
  private opened: { resolve: () => void; reject: (e: Error) => void } | null = null;
  private closed: { resolve: () => void } | null = null;
  /** True once the first open() completed: from then on a dropped socket is replaced. */
  private established = false;
  private readonly backoff: Backoff;

  constructor(
    readonly endpoint: Endpoint,
    readonly policy: ClientPolicy,
  ) {
    super();
    this.containerId = policy.containerId || `nitrogen-${randomUUID()}`;
    this.backoff = new Backoff(policy.reconnect);
  }

  /**
   * Connects, authenticates, exchanges open and begins the default session,
   * within connectTimeout. The first connect is one attempt: it rejects with
   * what stopped it (and the connection is closed); reconnection applies only
   * to a connection that has been open.
   */
  async open(): Promise<this> {
    try {
      await this.establish();
      await this.session();
    } catch (e) {
      const err = e instanceof AmqpError ? e : new ConnectionError({ condition: Condition.InternalError, description: String(e) });
      this.abandon(err);
      throw this.error ?? err;
    }
    this.established = true;
    this.connected();
    return this;
  }

  /** The output buffer senders encode transfers into (sent at the end of the turn). */
  get out(): Writer {
    return this.outbound.out;
  }
  /** False while the socket's buffer is full; senders stop until it drains. */
  get writable(): boolean {
    return this.outbound.writable;
  }

  get maxFrameSize(): number {
    return Math.min(this.remote?.maxFrameSize ?? MIN_MAX_FRAME_SIZE, 0xffffffff);
  }

  async createSession(): Promise<Session> {
    const max = Math.min(this.policy.channelMax, this.remote?.channelMax ?? this.policy.channelMax);
    let channel = 0;
    while (this.sessions[channel] !== undefined) channel++;
    if (channel > max) throw new ConnectionError({ condition: Condition.ResourceLimitExceeded, description: `channel-max ${max} reached` });
    const session = new Session(this, channel);
    this.sessions[channel] = session;
    await session.begin();
    return session;
  }

  /** Creates a sender on the default session. */
  async createSender(address: string, options?: SenderOptions): Promise<Sender> {
    return (await this.session()).createSender(address, options);
  }

  /** Creates a receiver on the default session. */
  async createReceiver(address: string, options?: ReceiverOptions): Promise<Receiver> {
    return (await this.session()).createReceiver(address, options);
  }

  /** The default session; begun again if the peer ended it (RabbitMQ ends sessions on a missing queue). */
  private async session(): Promise<Session> {
    if (this.state === 'closed' || this.state === 'closing') {
      throw new ConnectionError({ condition: Condition.IllegalState, description: `connection is ${this.state}` });
    }
    if (this.defaultSession === null) {
      const p = this.createSession();
      this.defaultSession = p;
      p.catch(() => {
        if (this.defaultSession === p) this.defaultSession = null;
      });
    }
    return this.defaultSession;
  }

  /** Closes the connection (§2.4.3), optionally with an error for the peer; fails sends still pending. */
  async close(error?: ErrorCondition): Promise<void> {
    if (this.state === 'closed') return;
    const wasOpen = this.state === 'open';
    this.state = 'closing';
    const reason = new ConnectionError({ condition: Condition.ConnectionForced, description: 'connection closed locally' }, 'ERR_AMQP_CLOSED');
    for (const s of this.sessions) s?.fail(reason, true, true);
    if (!wasOpen || !this.socket) {
      this.socket?.destroy();
      this.finish(reason);
      return;
    }
    const done = new Promise<void>((resolve) => {
      this.closed = { resolve };
    });
    this.sendFrame(0, CloseType, { error });
    const timer = setTimeout(() => this.socket?.destroy(), this.policy.operationTimeout);
    await done;
    clearTimeout(timer);
  }

  // ---- socket lifecycle ----

  /** Opens a socket and runs it up to the peer's open; the connect timer runs until connected(). */
  private establish(): Promise<void> {
    this.epoch++;
    this.state = this.state === 'reconnecting' ? 'reconnecting' : 'connecting';
    const { host, port } = this.endpoint;
    log.connection('connecting to %s:%d (tls %s)', host, port, this.endpoint.tls);
    const socket: Socket = this.endpoint.tls ? tls.connect({ host, port, servername: net.isIP(host) ? undefined : host, ...this.policy.tls }) : net.connect({ host, port });
    socket.setNoDelay(true);
    this.socket = socket;
    this.stage = 'socket';
    this.sasl = null;
    this.inbound.reset();
    this.outbound.use(socket);
    const opened = new Promise<void>((resolve, reject) => {
      this.opened = { resolve, reject };
    });
    const ms = this.policy.connectTimeout;
    this.connectTimer = setTimeout(() => {
      this.connectTimer = null;
      this.fatal(new OperationTimeoutError(`connect to ${host}:${port} timed out after ${ms} ms waiting for ${AWAITING[this.stage]}`));
    }, ms);
    socket.once(this.endpoint.tls ? 'secureConnect' : 'connect', () => this.onConnected());
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => {
      this.outbound.writable = true;
      this.pumpAll();
    });
    socket.on('error', (e: Error) => this.fatal(new ConnectionError({ condition: Condition.ConnectionForced, description: e.message }, 'ERR_AMQP_SOCKET')));
    socket.on('close', () => this.onSocketClosed(socket));
    return opened;
  }

  /** The socket is up to date: the connect timer stops, and the connection counts as up from now. */
  private connected(): void {
    if (this.connectTimer) clearTimeout(this.connectTimer);
    this.connectTimer = null;
    this.stage = 'up';
    this.backoff.up();
  }

  /** The first connect failed: close for good, with its reason. */
  private abandon(err: AmqpError): void {
    if (this.state === 'closed') return;
    this.finish(err);
    this.socket?.destroy();
  }

  private onConnected(): void {
    const mech = this.policy.sasl;
    if (mech === 'none') {
      this.startAmqp();
      return;
    }
    this.stage = 'sasl';
    const { username, password } = this.endpoint;
    const mechanism = mech !== 'auto' ? mech : username !== undefined ? Sasl.plain(username, password ?? '') : Sasl.anonymous();
    this.sasl = new SaslClient(
      mechanism,
      this.hostname(),
      (c, body) => this.sendFrame(0, c, body, undefined, FrameType.Sasl),
      (e) => this.fatal(e),
    );
    this.inbound.expect(SASL_HEADER, SASL_MAX_FRAME_SIZE);
    this.outbound.raw(SASL_HEADER);
  }

  private hostname(): string {
    return this.policy.hostname || this.endpoint.host;
  }

  /** §2.4.1: protocol header, then our open, pipelined. */
  private startAmqp(): void {
    this.stage = 'open';
    const p = this.policy;
    // Our open goes out with the header (pipelined), so frames may be as large as it announces (§2.7.1).
    this.inbound.expect(AMQP_HEADER, p.maxFrameSize);
    this.outbound.raw(AMQP_HEADER);
    this.sendFrame(0, OpenType, {
      containerId: this.containerId,
      hostname: this.hostname(),
      maxFrameSize: p.maxFrameSize,
      channelMax: p.channelMax,
      idleTimeOut: p.idleTimeout || undefined,
      offeredCapabilities: p.offeredCapabilities,
      desiredCapabilities: p.desiredCapabilities,
      properties: p.properties,
    });
    this.outbound.mayReply = true;
  }

  private onData(chunk: Buffer): void {
    this.heartbeat.received = true;
    if (log.socket.enabled) log.socket('<- %d bytes', chunk.length);
    try {
      this.inbound.push(chunk);
    } catch (e) {
      this.fatal(e instanceof AmqpError ? e : new ConnectionError({ condition: Condition.InternalError, description: String(e) }));
    }
  }

  /** One whole frame; true when the bytes after it are no longer SASL frames. */
  private onFrame(type: number, channel: number, frame: Buffer, bodyStart: number): boolean {
    if (this.sasl !== null) {
      // §5.3.2: until the outcome, only SASL frames may arrive.
      if (type !== FrameType.Sasl) throw protocolError(`AMQP frame (type ${type}) before the SASL outcome`);
      const f = saslFrames.decode(frame, bodyStart);
      if (log.frames.enabled) log.frames(describeFrame('<-', channel, f && f.name, f?.body));
      if (f === null || !this.sasl.onFrame(f)) return false;
      this.sasl = null;
      this.startAmqp();
      return true;
    }
    if (type !== FrameType.Amqp) throw protocolError(`frame of type ${type} on an AMQP connection`);
    const f = amqpFrames.decode(frame, bodyStart);
    if (log.frames.enabled) log.frames(describeFrame('<-', channel, f && f.name, f?.body, f?.payload.length));
    if (f === null) return false; // heartbeat
    this.outbound.owesReply();
    if (f.name === 'open') {
      this.onOpen(f.body);
      return false;
    }
    if (f.name === 'close') {
      this.onClose(f.body.error);
      return false;
    }
    if (this.remote === null) throw protocolError(`${f.name} before open`); // §2.4.1: open comes first
    if (this.state === 'closing') return false; // §2.4.3: after our close, only the peer's close matters
    const session = f.name === 'begin' ? this.sessions[f.body.remoteChannel ?? -1] : this.byRemoteChannel.get(channel);
    if (!session) throw new ConnectionError({ condition: Condition.IllegalState, description: `${f.name} on unknown channel ${channel}` });
    if (f.name === 'begin') this.byRemoteChannel.set(channel, session);
    session.onFrame(f, channel);
    return false;
  }

  private onOpen(open: Open): void {
    if (this.remote !== null) throw protocolError('a second open');
    if ((open.maxFrameSize ?? 0) < MIN_MAX_FRAME_SIZE) {
      throw new FramingError(`peer max-frame-size ${open.maxFrameSize} is below the minimum ${MIN_MAX_FRAME_SIZE}`);
    }
    this.remote = open;
    this.state = 'open';
    this.stage = 'begin';
    log.connection('open: peer %s, max-frame-size %d, idle-time-out %s', open.containerId, open.maxFrameSize, open.idleTimeOut);
    this.heartbeat.start(open.idleTimeOut ?? 0, this.policy.idleTimeout);
    this.emit('open');
    this.opened?.resolve();
    this.opened = null;
    if (this.established) void this.restoreSessions();
  }

  /** After a reconnect, every session begins again (and re-attaches its links once mapped). */
  private async restoreSessions(): Promise<void> {
    const epoch = this.epoch;
    // A session the peer refuses to begin again fails on its own; the connection is up all the same.
    await Promise.allSettled(this.sessions.filter((s) => s !== undefined).map((s) => s.begin()));
    if (epoch === this.epoch && this.state === 'open') this.connected();
  }

  /** The peer closed the connection (§2.4.3): answer, then drop the socket. */
  private onClose(error: ErrorCondition | undefined): void {
    log.connection('peer closed: %o', error);
    if (this.state === 'closing') {
      this.socket?.end();
      return;
    }
    this.sendFrame(0, CloseType, {});
    this.outbound.flush();
    const err = new ConnectionError(error ?? { condition: Condition.ConnectionForced, description: 'closed by peer' });
    // Only amqp:connection:forced (e.g. broker restart) is worth a reconnect; others are answers.
    this.drop(err, error === undefined || error.condition === Condition.ConnectionForced);
  }

  /** Fatal local error (decode, framing, SASL, timeout): close with it and drop the socket. */
  private fatal(err: AmqpError): void {
    log.connection('error: %s', err.message);
    if (this.socket && !this.socket.destroyed && this.remote) {
      this.sendFrame(0, CloseType, { error: { condition: err.condition, description: err.description } });
      this.outbound.flush();
    }
    const transient = err.code === 'ERR_AMQP_SOCKET' || err.condition === Condition.ResourceLimitExceeded;
    this.drop(err, transient);
  }

  private dropReason: { err: AmqpError; retry: boolean } | null = null;

  private drop(err: AmqpError, retry: boolean): void {
    this.dropReason ??= { err, retry };
    this.socket?.end();
    this.socket?.destroy();
  }

  private onSocketClosed(socket: Socket): void {
    if (socket !== this.socket) return;
    this.socket = null;
    this.heartbeat.stop();
    if (this.connectTimer) clearTimeout(this.connectTimer);
    this.connectTimer = null;
    this.byRemoteChannel.clear();
    const reason = this.dropReason ?? { err: this.socketClosed(), retry: true };
    this.dropReason = null;
    if (this.state === 'closed') return;
    if (this.state === 'closing') {
      this.finish(reason.err);
      return;
    }
    if (this.opened) {
      this.opened.reject(reason.err);
      this.opened = null;
    }
    this.remote = null;
    const delay = this.established && reason.retry ? this.backoff.next() : undefined;
    if (delay === undefined) {
      this.finish(reason.err);
      return;
    }
    this.state = 'reconnecting';
    for (const s of this.sessions) s?.onTransportLost(reason.err);
    log.connection('disconnected (%s); reconnect attempt %d in %d ms', reason.err.message, this.backoff.attempt, Math.round(delay));
    this.emit('disconnected', reason.err);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this.establish().catch(() => undefined);
    }, delay);
  }

  /** The peer closed the socket without an AMQP close: say when, as that is most of what is known. */
  private socketClosed(): ConnectionError {
    const { host, port } = this.endpoint;
    const when = this.stage === 'up' ? '' : ` while waiting for ${AWAITING[this.stage]}`;
    return new ConnectionError({ condition: Condition.ConnectionForced, description: `socket to ${host}:${port} closed${when}` }, 'ERR_AMQP_SOCKET');
  }

  private finish(err: AmqpError): void {
    if (this.state === 'closed') return;
    const local = this.state === 'closing';
    this.state = 'closed';
    this.heartbeat.stop();
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.connectTimer) clearTimeout(this.connectTimer);
    this.opened?.reject(err);
    this.opened = null;
    for (const s of this.sessions) s?.fail(err, true);
    if (!local) this.error = err;
    this.closed?.resolve();
    this.emit('closed', local ? undefined : err);
  }

  // ---- output ----

  sendFrame<T extends object>(channel: number, c: Composite<T>, body: T, payload?: Uint8Array, type: number = FrameType.Amqp): void {
    this.outbound.frame(type, channel, c, body, payload);
  }

  /** Makes sure what is buffered goes out at the end of this turn. */
  scheduleFlush(): void {
    this.outbound.schedule();
  }

  private pumpAll(): void {
    for (const s of this.sessions) s?.pump();
  }

  /** Called by a session once it is ended, to free its channel. */
  releaseChannel(session: Session): void {
    if (this.sessions[session.channel] === session) this.sessions[session.channel] = undefined;
    for (const [ch, s] of this.byRemoteChannel) if (s === session) this.byRemoteChannel.delete(ch);
    void this.defaultSession?.then(
      (s) => {
        if (s === session) this.defaultSession = null;
      },
      () => undefined,
    );
  }
}

const protocolError = (description: string): ConnectionError => new ConnectionError({ condition: Condition.NotAllowed, description }, 'ERR_AMQP_PROTOCOL');
