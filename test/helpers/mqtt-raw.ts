/**
 * MQTT 3.1.1 packets encoded by hand, and a client on a raw socket, for tests that must send
 * what the `mqtt` client never would (a packet id 0, an unknown protocol level, a reader that
 * stops reading) and see exactly what the server answers. Packet layouts: MQTT 3.1.1 §2–§3.
 */
import net from 'node:net';

export const CONNACK = 0x20;
export const PUBLISH = 0x30;
export const PUBACK = 0x40;
export const SUBACK = 0x90;
export const UNSUBACK = 0xb0;
export const PINGRESP = 0xd0;

export function remainingLength(n: number): Buffer {
  const out: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0);
  return Buffer.from(out);
}

/** §1.5.3: two length bytes, then the UTF-8 bytes. */
export function utf8(s: string | Buffer): Buffer {
  const b = typeof s === 'string' ? Buffer.from(s, 'utf8') : s;
  const len = Buffer.alloc(2);
  len.writeUInt16BE(b.length);
  return Buffer.concat([len, b]);
}

function packet(first: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([first]), remainingLength(body.length), body]);
}

export interface ConnectOptions {
  clientId: string;
  username?: string;
  password?: string;
  clean?: boolean;
  keepalive?: number;
  protocolName?: string;
  protocolLevel?: number;
  will?: { topic: string; payload: string; qos?: 0 | 1; retain?: boolean };
}

/** §3.1 CONNECT. */
export function connectPacket(o: ConnectOptions): Buffer {
  let flags = o.clean === false ? 0 : 0x02;
  if (o.will) flags |= 0x04 | ((o.will.qos ?? 0) << 3) | (o.will.retain ? 0x20 : 0);
  if (o.username !== undefined) flags |= 0x80;
  if (o.password !== undefined) flags |= 0x40;
  const keepalive = o.keepalive ?? 60;
  // MQTT 5 adds a properties length (here 0) after the keep alive, and before the will fields.
  const v5 = o.protocolLevel === 5 ? [Buffer.from([0])] : [];
  const variable = Buffer.concat([utf8(o.protocolName ?? 'MQTT'), Buffer.from([o.protocolLevel ?? 4, flags, keepalive >> 8, keepalive & 0xff]), ...v5]);
  const fields = [utf8(o.clientId)];
  if (o.will) fields.push(...v5, utf8(o.will.topic), utf8(o.will.payload));
  if (o.username !== undefined) fields.push(utf8(o.username));
  if (o.password !== undefined) fields.push(utf8(o.password));
  return packet(0x10, Buffer.concat([variable, ...fields]));
}

/** §3.3 PUBLISH; the packet id is written for QoS 1 and 2 only, as the spec lays it out. */
export function publishPacket(o: { topic: string; payload: string | Buffer; qos?: 0 | 1 | 2; packetId?: number; retain?: boolean; dup?: boolean }): Buffer {
  const qos = o.qos ?? 0;
  const first = 0x30 | (o.dup ? 0x08 : 0) | (qos << 1) | (o.retain ? 0x01 : 0);
  const id = Buffer.alloc(qos > 0 ? 2 : 0);
  if (qos > 0) id.writeUInt16BE(o.packetId ?? 1);
  return packet(first, Buffer.concat([utf8(o.topic), id, typeof o.payload === 'string' ? Buffer.from(o.payload) : o.payload]));
}

/** §3.8 SUBSCRIBE. */
export function subscribePacket(packetId: number, filters: Array<{ topic: string; qos?: 0 | 1 | 2 }>): Buffer {
  const id = Buffer.alloc(2);
  id.writeUInt16BE(packetId);
  return packet(0x82, Buffer.concat([id, ...filters.map((f) => Buffer.concat([utf8(f.topic), Buffer.from([f.qos ?? 0])]))]));
}

/** §3.10 UNSUBSCRIBE. */
export function unsubscribePacket(packetId: number, filters: string[]): Buffer {
  const id = Buffer.alloc(2);
  id.writeUInt16BE(packetId);
  return packet(0xa2, Buffer.concat([id, ...filters.map((f) => utf8(f))]));
}

/** §3.4 PUBACK. */
export function pubackPacket(packetId: number): Buffer {
  return Buffer.from([0x40, 0x02, packetId >> 8, packetId & 0xff]);
}

export const DISCONNECT = Buffer.from([0xe0, 0x00]);
export const PINGREQ = Buffer.from([0xc0, 0x00]);

export interface ReceivedPacket {
  /** The high nibble of the first byte, e.g. CONNACK. */
  type: number;
  flags: number;
  body: Buffer;
}

/** The CONNACK return code (§3.2.2.3), or undefined when `p` is not a CONNACK. */
function connackCode(p: ReceivedPacket | undefined): number | undefined {
  return p?.type === CONNACK ? p.body[1] : undefined;
}

/** Topic and payload of a received PUBLISH (§3.3.2). */
function publishOf(p: ReceivedPacket): { topic: string; payload: Buffer; packetId?: number } {
  const topicLength = p.body.readUInt16BE(0);
  const topic = p.body.subarray(2, 2 + topicLength).toString('utf8');
  const qos = (p.flags >> 1) & 3;
  const packetId = qos > 0 ? p.body.readUInt16BE(2 + topicLength) : undefined;
  return { topic, payload: p.body.subarray(2 + topicLength + (qos > 0 ? 2 : 0)), packetId };
}

/**
 * A socket speaking raw MQTT: what the server sends is split into packets (§2.2) and kept;
 * `next` waits for a packet by what it is, `closed` for the server to end the connection.
 */
export class RawClient {
  readonly received: ReceivedPacket[] = [];
  readonly closed: Promise<void>;
  private pending = Buffer.alloc(0);
  private waiters: Array<() => void> = [];
  private isClosed = false;

  constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => {});
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.isClosed = true;
        resolve();
        this.wake();
      }),
    );
  }

  static connect(url: string): Promise<RawClient> {
    const { hostname, port } = new URL(url);
    return new Promise((resolve, reject) => {
      const socket = net.connect(Number(port), hostname, () => resolve(new RawClient(socket)));
      socket.once('error', reject);
    });
  }

  /** Connects and sends CONNECT; resolves with the CONNACK (code undefined when closed without one). */
  static async open(url: string, options: ConnectOptions): Promise<{ client: RawClient; code: number | undefined; sessionPresent: boolean }> {
    const connect = connectPacket(options);
    const client = await RawClient.connect(url);
    client.send(connect);
    const connack = await client.next((p) => p.type === CONNACK);
    return { client, code: connackCode(connack), sessionPresent: connack?.body[0] === 1 };
  }

  /** The PUBLISH packets received so far, decoded. */
  publishes(): Array<{ topic: string; payload: Buffer; packetId?: number }> {
    return this.received.filter((p) => p.type === PUBLISH).map(publishOf);
  }

  get isOpen(): boolean {
    return !this.isClosed;
  }

  send(bytes: Buffer): void {
    if (!this.socket.destroyed) this.socket.write(bytes);
  }

  /** Resolves with the first received packet (old or new) that `match` accepts; undefined once closed without one. */
  async next(match: (p: ReceivedPacket) => boolean): Promise<ReceivedPacket | undefined> {
    for (;;) {
      const found = this.received.find(match);
      if (found) return found;
      if (this.isClosed) return undefined;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  /** Resolves once at least `count` packets match. */
  async count(match: (p: ReceivedPacket) => boolean, count: number): Promise<number> {
    for (;;) {
      const n = this.received.filter(match).length;
      if (n >= count || this.isClosed) return n;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  /** Stops reading the socket: the kernel buffers fill, then the server's writes back up. */
  stopReading(): void {
    this.socket.pause();
  }

  destroy(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    let buf = this.pending.length > 0 ? Buffer.concat([this.pending, chunk]) : chunk;
    for (;;) {
      if (buf.length < 2) break;
      let length = 0;
      let multiplier = 1;
      let i = 1;
      let byte = 0x80;
      while (byte & 0x80 && i < buf.length && i <= 4) {
        byte = buf[i++]!;
        length += (byte & 0x7f) * multiplier;
        multiplier *= 128;
      }
      if (byte & 0x80 || i + length > buf.length) break;
      this.received.push({ type: buf[0]! & 0xf0, flags: buf[0]! & 0x0f, body: buf.subarray(i, i + length) });
      buf = buf.subarray(i + length);
    }
    this.pending = Buffer.from(buf);
    this.wake();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}
