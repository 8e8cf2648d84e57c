import { ClientError } from '../errors.js';
import { PacketReader, ProtocolViolation, readPublish, type IncomingPublish } from './packet-reader.js';
import { CONNACK_REASONS, DISCONNECT, PINGREQ, PacketType, encodeConnect, encodePublish, encodePuback, encodeSubscribe, encodeUnsubscribe, type ConnectFields } from './packets.js';

/** A byte stream to an MQTT server: TCP in Node; TLS and WebSockets plug in here too. */
export interface ByteStream {
  write(bytes: Buffer): void;
  /** Closes after what was written (FIN). */
  end(): void;
  destroy(): void;
}

/** Opens a stream; `onData` chunks are valid only during the call. `onClose` is called once. */
export type StreamOpener = (handlers: { onData(chunk: Buffer): void; onClose(error: Error | null): void }) => ByteStream;

export interface ConnectionHandlers<Token> {
  /** The PUBACK of the PUBLISH that was given `token`. */
  onPuback(token: Token): void;
  onPublish(message: IncomingPublish): void;
  /** Once, after CONNACK 0; `error` is null when we closed it ourselves. */
  onClose(error: Error | null): void;
}

export interface ConnectionOptions extends ConnectFields {
  connectTimeoutMs: number;
  maxPacketBytes: number;
}

/**
 * What each CONNACK refusal (MQTT 3.1.1 §3.2.2.3) is called here: the server's error code where
 * it has one (docs/errors.md gives the pairs). Nitrogen answers 3 for "retry later" (too many
 * failed logins for the id or the address, too many password checks waiting, its session state
 * unreachable) and 2 for a client id another principal holds.
 */
const CONNACK_CODES: Readonly<Record<number, ClientError['code']>> = {
  1: 'NITROGEN_CLIENT_PROTOCOL',
  2: 'NITROGEN_CLIENT_ID_REJECTED',
  3: 'NITROGEN_ERR_RATE_LIMITED',
  4: 'NITROGEN_ERR_BAD_CREDENTIALS',
  5: 'NITROGEN_ERR_PRINCIPAL_DISABLED',
};

/** CONNACK with a non-zero return code as a client error, `details.returnCode` the code. */
function connackError(returnCode: number): ClientError {
  const reason = CONNACK_REASONS[returnCode] ?? 'unknown return code';
  const hint = returnCode === 3 ? ': retry later' : returnCode === 2 ? ': another principal holds this client id' : '';
  return new ClientError(CONNACK_CODES[returnCode] ?? 'NITROGEN_CLIENT_PROTOCOL', `the server refused the connection: CONNACK ${returnCode} (${reason})${hint}`, { returnCode });
}

/**
 * One MQTT 3.1.1 session over one network connection, from CONNECT to close; reconnecting is
 * the link's business. It assigns packet ids, answers the server's QoS 1 PUBLISHes with PUBACK,
 * and keeps the connection alive with PINGREQ when nothing else was sent for half the keepalive.
 * Per message it does no more than encode, write and, on PUBACK, call back with the packet id:
 * no timer is touched and no clock read on the hot path.
 */
export class MqttConnection<Token = unknown> {
  private stream!: ByteStream;
  private readonly reader: PacketReader;
  private state: 'connecting' | 'open' | 'closed' = 'connecting';
  private nextId = 0;
  /** Ids of SUBSCRIBE and UNSUBSCRIBE packets awaiting their answer. */
  private readonly requests = new Map<number, { resolve(codes: number[]): void; reject(error: Error): void }>();
  /** Our unacknowledged PUBLISHes by packet id, so a new packet never reuses one [MQTT-2.3.1-2]. */
  private readonly publishes = new Map<number, Token>();
  private keepaliveTimer: ReturnType<typeof setInterval> | undefined;
  private sentSinceTick = true;
  private receivedSinceTick = true;
  private pingOutstanding = false;
  private handlers: ConnectionHandlers<Token> | null = null;
  private settleConnect: ((error: Error | null) => void) | null = null;

  private constructor(private readonly options: ConnectionOptions) {
    this.reader = new PacketReader(options.maxPacketBytes, this.onPacket);
  }

  /** Connects and resolves after CONNACK 0; rejects with the refusal, the network error or a timeout. */
  static open<Token>(open: StreamOpener, options: ConnectionOptions, handlers: ConnectionHandlers<Token>): Promise<MqttConnection<Token>> {
    const connection = new MqttConnection<Token>(options);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => connection.fail(new ClientError('NITROGEN_CLIENT_TIMEOUT', `no CONNACK within ${options.connectTimeoutMs} ms`, { limit: 'connectTimeoutMs' })), options.connectTimeoutMs);
      connection.settleConnect = (error) => {
        clearTimeout(timer);
        connection.settleConnect = null;
        if (error) return reject(error);
        connection.handlers = handlers;
        resolve(connection);
      };
      connection.stream = open({ onData: (chunk) => connection.onData(chunk), onClose: (error) => connection.onStreamClosed(error) });
      // Sent at once: the stream queues it until the connection is up.
      connection.stream.write(encodeConnect(options));
    });
  }

  get open(): boolean {
    return this.state === 'open';
  }

  /** Why it closed, once it has (null: closed by us). */
  closeError: Error | null = null;

  /** QoS 1 PUBLISH; `onPuback` reports `token` when the server acknowledges it. */
  publish(topic: Buffer, payload: string, payloadBytes: number, token: Token): void {
    const id = this.allocateId();
    this.publishes.set(id, token);
    this.write(encodePublish(topic, payload, 1, id, payloadBytes));
  }

  /** PUBLISHes awaiting their PUBACK. */
  get inFlight(): number {
    return this.publishes.size;
  }

  /** Subscribes at QoS 1; resolves with the SUBACK return codes, one per filter (0x80: refused). */
  subscribe(filters: string[]): Promise<number[]> {
    return this.request((id) => encodeSubscribe(id, filters, 1));
  }

  unsubscribe(filters: string[]): Promise<void> {
    return this.request((id) => encodeUnsubscribe(id, filters)).then(() => undefined);
  }

  /** Ends the session politely: DISCONNECT (§3.14), then FIN. */
  close(): void {
    if (this.state === 'closed') return;
    if (this.state === 'open') this.stream.write(DISCONNECT);
    this.finish(null);
    this.stream.end();
  }

  /** Drops the connection at once with `error`. */
  fail(error: Error): void {
    if (this.state === 'closed') return;
    this.finish(error);
    this.stream.destroy();
  }

  private request(encode: (id: number) => Buffer): Promise<number[]> {
    if (this.state !== 'open') return Promise.reject(new ClientError('NITROGEN_CLIENT_UNREACHABLE', 'the MQTT connection is closed'));
    const id = this.allocateId();
    return new Promise((resolve, reject) => {
      this.requests.set(id, { resolve, reject });
      this.write(encode(id));
    });
  }

  private allocateId(): number {
    do this.nextId = this.nextId === 65_535 ? 1 : this.nextId + 1;
    while (this.publishes.has(this.nextId) || this.requests.has(this.nextId));
    return this.nextId;
  }

  private write(bytes: Buffer): void {
    this.sentSinceTick = true;
    this.stream.write(bytes);
  }

  private onData(chunk: Buffer): void {
    if (this.state === 'closed') return;
    this.receivedSinceTick = true;
    try {
      this.reader.push(chunk);
    } catch (err) {
      if (!(err instanceof ProtocolViolation)) throw err;
      this.fail(new ClientError('NITROGEN_CLIENT_PROTOCOL', err.message, undefined, undefined, { cause: err }));
    }
  }

  private readonly onPacket = (type: number, flags: number, buf: Buffer, start: number, end: number): void => {
    if (this.state === 'closed') return; // the rest of a read after we gave up on the connection
    if (this.state === 'connecting') {
      // The first packet from the server MUST be CONNACK [MQTT-3.2.0-1].
      if (type !== PacketType.CONNACK) throw new ProtocolViolation('the first packet from the server was not CONNACK');
      const returnCode = buf[start + 1]!;
      if (returnCode !== 0) {
        this.fail(connackError(returnCode));
        return;
      }
      this.state = 'open';
      this.startKeepalive();
      this.settleConnect?.(null);
      return;
    }
    switch (type) {
      case PacketType.PUBACK: {
        const id = buf.readUInt16BE(start);
        const token = this.publishes.get(id);
        if (token === undefined) throw new ProtocolViolation(`PUBACK for packet id ${id}, which is not awaiting one`);
        this.publishes.delete(id);
        this.handlers!.onPuback(token);
        return;
      }
      case PacketType.PUBLISH: {
        const message = readPublish(flags, buf, start, end);
        // We subscribe at QoS 1, so the server may not send QoS 2 [MQTT-3.8.4-6].
        if (message.qos === 2) throw new ProtocolViolation('a QoS 2 PUBLISH on a QoS 1 subscription');
        if (message.qos === 1) this.write(encodePuback(message.packetId));
        this.handlers!.onPublish(message);
        return;
      }
      case PacketType.SUBACK:
      case PacketType.UNSUBACK: {
        const id = buf.readUInt16BE(start);
        const waiting = this.requests.get(id);
        if (!waiting) throw new ProtocolViolation(`${type === PacketType.SUBACK ? 'SUBACK' : 'UNSUBACK'} for packet id ${id}, which is not awaiting one`);
        this.requests.delete(id);
        waiting.resolve([...buf.subarray(start + 2, end)]);
        return;
      }
      case PacketType.PINGRESP:
        this.pingOutstanding = false;
        return;
      default:
        throw new ProtocolViolation('a second CONNACK');
    }
  };

  /**
   * Ticks every half keepalive: a PINGREQ when nothing was sent since the last tick, so the
   * server hears from us well within the keepalive [MQTT-3.1.2-23]; and when a PINGREQ was
   * answered by nothing at all for a whole tick, the server is gone.
   */
  private startKeepalive(): void {
    const seconds = this.options.keepaliveSeconds;
    if (seconds === 0) return;
    this.keepaliveTimer = setInterval(
      () => {
        if (this.pingOutstanding && !this.receivedSinceTick) {
          this.fail(new ClientError('NITROGEN_CLIENT_TIMEOUT', `no answer to PINGREQ within ${seconds / 2} s`, { limit: 'keepaliveSeconds' }));
          return;
        }
        this.receivedSinceTick = false;
        if (!this.sentSinceTick) {
          this.pingOutstanding = true;
          this.stream.write(PINGREQ);
        }
        this.sentSinceTick = false;
      },
      (seconds * 1000) / 2,
    );
    this.keepaliveTimer.unref?.();
  }

  private onStreamClosed(error: Error | null): void {
    if (this.state === 'closed') return;
    this.finish(error ?? new ClientError('NITROGEN_CLIENT_UNREACHABLE', this.state === 'connecting' ? 'the server closed the connection before CONNACK' : 'the server closed the connection'));
  }

  private finish(error: Error | null): void {
    const wasOpen = this.state === 'open';
    this.state = 'closed';
    this.closeError = error;
    clearInterval(this.keepaliveTimer);
    const failure = error ?? new ClientError('NITROGEN_CLIENT_CLOSED', 'the connection was closed');
    for (const waiting of this.requests.values()) waiting.reject(failure);
    this.requests.clear();
    this.publishes.clear();
    if (this.settleConnect) this.settleConnect(failure);
    else if (wasOpen) this.handlers!.onClose(error);
  }
}
