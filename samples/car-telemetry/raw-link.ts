import { connect, type Socket } from 'node:net';
import type { CarLink, Endpoint, LinkListener } from './car-link.js';
import { CONNACK, DISCONNECT, PINGREQ, PUBACK, connectPacket, publishPacket, readPackets, utf8Field } from './mqtt-wire.js';

/**
 * QoS 1 PUBLISHes in flight per connection. A car sending twice a second fills it only when
 * acknowledgements lag by 8 seconds; then it drops samples instead of queueing without bound.
 */
const WINDOW = 16;

/**
 * Every link reads into this one buffer (Node's `onread`): a connection's bytes are handled
 * before the next read, so the stream machinery and a Buffer per read are saved on each PUBACK.
 */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

/** CONNACK return code 3 (MQTT 3.1.1 §3.2.2.3). */
const SERVER_UNAVAILABLE = 3;

/**
 * One car's MQTT 3.1.1 connection over a raw socket, with the encoding of mqtt-wire.ts (`--link
 * raw`): the benchmarks' load generator, where tens of thousands of cars must cost far less than
 * the server they measure, and the yardstick of the client library's cost (`npm run bench:client`).
 * It keeps per connection a socket, a 16-slot send-time table for ack latency, and a few numbers;
 * it does not reconnect (the fleet does) nor queue (a sample that finds the window full is dropped).
 */
export class RawLink implements CarLink {
  readonly dropReason = `the oldest of its last ${WINDOW} QoS 1 PUBLISHes was still unacknowledged`;
  /** performance.now() of the last packet sent, for the keepalive. */
  private lastSendAt = 0;
  private keepaliveMs = 60_000;
  private topic: Buffer | null = null;
  private inflight = 0;
  private socket: Socket | null = null;
  private pending: Buffer | null = null;
  /** Send time per packet id (id = slot + 1); 0 marks a free slot. */
  private readonly sentAt = new Float64Array(WINDOW);
  private nextSlot = 0;
  private closeReason: string | null = null;
  private connected = false;

  constructor(private readonly listener: LinkListener) {}

  open(endpoint: Endpoint, localAddress: string | undefined, id: string, secret: string, keepaliveS: number): void {
    const url = new URL(endpoint.mqtt);
    this.topic ??= utf8Field(`devices/${id}/messages`);
    this.keepaliveMs = keepaliveS * 1000;
    this.inflight = 0;
    this.sentAt.fill(0);
    this.pending = null;
    this.closeReason = 'closed by the server';
    this.connected = false;
    const socket = connect({
      host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: url.port ? Number(url.port) : 1883,
      localAddress,
      noDelay: true,
      onread: { buffer: READ_BUFFER, callback: (n: number, buf: Uint8Array) => this.onData(buf as Buffer, n) },
    });
    this.socket = socket;
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (this.closeReason) this.closeReason = err.code ?? err.message;
    });
    socket.on('close', () => {
      this.socket = null;
      this.connected = false;
      this.listener.onClosed(this.closeReason, this.inflight, false);
    });
    // Node queues this until the TCP connection is up.
    socket.write(connectPacket(id, id, secret, keepaliveS));
    this.lastSendAt = performance.now();
  }

  /**
   * Sends one PUBLISH of the envelope. Returns false, sending nothing, when the link is not
   * connected or, at QoS 1, when the oldest of the last WINDOW packet ids is still unacknowledged.
   */
  publish(type: string, tsMs: number, body: object, qos: 0 | 1): boolean {
    if (!this.connected || !this.socket) return false;
    const payload = JSON.stringify({ type, ts: new Date(tsMs).toISOString(), body });
    const now = performance.now();
    const slot = this.nextSlot;
    if (qos === 1) {
      if (this.sentAt[slot] !== 0) return false;
      this.sentAt[slot] = now;
      this.inflight++;
      this.nextSlot = (slot + 1) % WINDOW;
    }
    this.socket.write(publishPacket(this.topic!, payload, qos, slot + 1));
    this.lastSendAt = now;
    return true;
  }

  /** A PINGREQ once nothing was sent for half the keepalive. */
  idle(now: number): void {
    if (now - this.lastSendAt <= this.keepaliveMs / 2) return;
    this.socket?.write(PINGREQ);
    this.lastSendAt = now;
  }

  /** Ends the session politely: DISCONNECT (§3.14), then FIN. */
  close(): void {
    if (!this.socket) return;
    this.closeReason = null;
    if (this.connected) this.socket.write(DISCONNECT);
    this.socket.end();
  }

  /** Drops the connection at once; `reason` is reported unless it is null. */
  destroy(reason: string | null): void {
    this.closeReason = reason;
    this.socket?.destroy();
  }

  /** Returns true to keep reading (false would pause the socket). */
  private onData(buf: Buffer, n: number): boolean {
    const chunk = buf.subarray(0, n);
    const rest = readPackets(this.pending ? Buffer.concat([this.pending, chunk]) : chunk, this.onPacket);
    // A partial packet is kept as a copy: the read buffer is reused.
    this.pending = rest && Buffer.from(rest);
    return true;
  }

  private readonly onPacket = (type: number, buf: Buffer, start: number): void => {
    if (type === PUBACK) {
      const slot = buf.readUInt16BE(start) - 1;
      const sentAt = this.sentAt[slot];
      if (sentAt === undefined || sentAt === 0) return; // not one of ours: nothing to time
      this.sentAt[slot] = 0;
      this.inflight--;
      this.listener.onAck(performance.now() - sentAt);
    } else if (type === CONNACK) {
      const returnCode = buf[start + 1]!;
      if (returnCode === 0) {
        this.connected = true;
        this.listener.onConnected();
      } else if (returnCode === SERVER_UNAVAILABLE) {
        // Nitrogen's "retry later" (too many failed logins, too busy): a failed attempt, which the fleet makes again.
        this.destroy('CONNACK 3: server unavailable, retry later');
      } else {
        this.listener.onRefused(returnCode);
        this.destroy(null);
      }
    }
    // PINGRESP needs nothing: the keepalive is there for the server's sake.
  };
}
