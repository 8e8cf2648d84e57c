/**
 * MQTT 3.1.1 on the wire, the part a client needs: what it sends (CONNECT, PUBLISH, PUBACK,
 * SUBSCRIBE, UNSUBSCRIBE, PINGREQ, DISCONNECT) encoded into one Buffer each, and what a server
 * may send it, recognised by a table. Everything here is pure: no sockets, no timers.
 */

/** Control packet types (MQTT 3.1.1 §2.2.1, table 2.1). */
export const PacketType = {
  CONNECT: 1,
  CONNACK: 2,
  PUBLISH: 3,
  PUBACK: 4,
  PUBREC: 5,
  PUBREL: 6,
  PUBCOMP: 7,
  SUBSCRIBE: 8,
  SUBACK: 9,
  UNSUBSCRIBE: 10,
  UNSUBACK: 11,
  PINGREQ: 12,
  PINGRESP: 13,
  DISCONNECT: 14,
} as const;

/**
 * What a client accepts from a server, and the fixed-header flags each must carry
 * (§2.2.2, table 2.2: reserved flags are fixed; PUBLISH's are DUP, QoS and RETAIN).
 * A packet of any other type from a server is a protocol violation (§4.8).
 */
export const SERVER_PACKETS: Readonly<Record<number, { name: string; flags: number | 'publish'; minLength: number }>> = {
  [PacketType.CONNACK]: { name: 'CONNACK', flags: 0, minLength: 2 },
  [PacketType.PUBLISH]: { name: 'PUBLISH', flags: 'publish', minLength: 2 },
  [PacketType.PUBACK]: { name: 'PUBACK', flags: 0, minLength: 2 },
  [PacketType.SUBACK]: { name: 'SUBACK', flags: 0, minLength: 3 },
  [PacketType.UNSUBACK]: { name: 'UNSUBACK', flags: 0, minLength: 2 },
  [PacketType.PINGRESP]: { name: 'PINGRESP', flags: 0, minLength: 0 },
};

/** CONNACK return codes (§3.2.2.3, table 3.1). */
export const CONNACK_REASONS: Readonly<Record<number, string>> = {
  1: 'unacceptable protocol version',
  2: 'identifier rejected',
  3: 'server unavailable',
  4: 'bad user name or password',
  5: 'not authorized',
};

/** SUBACK return code of a refused filter (§3.9.3). */
export const SUBACK_FAILURE = 0x80;

/** The largest Remaining Length four bytes can encode (§2.2.3). */
const MAX_REMAINING_LENGTH = 268_435_455;

export const PINGREQ = Buffer.from([PacketType.PINGREQ << 4, 0]);
export const DISCONNECT = Buffer.from([PacketType.DISCONNECT << 4, 0]);

function remainingLengthSize(n: number): number {
  return n < 128 ? 1 : n < 16_384 ? 2 : n < 2_097_152 ? 3 : 4;
}

/** Writes the fixed header (§2.2) at 0 and returns where the variable header starts. */
function writeFixedHeader(out: Buffer, first: number, remaining: number): number {
  out[0] = first;
  let i = 1;
  do {
    let byte = remaining % 128;
    remaining = Math.floor(remaining / 128);
    if (remaining > 0) byte |= 0x80;
    out[i++] = byte;
  } while (remaining > 0);
  return i;
}

/** A UTF-8 string field: two length bytes, then the bytes (§1.5.3). */
function writeString(out: Buffer, at: number, s: string, bytes: number): number {
  out.writeUInt16BE(bytes, at);
  out.write(s, at + 2, 'utf8');
  return at + 2 + bytes;
}

function utf8Length(s: string, field: string): number {
  const n = Buffer.byteLength(s, 'utf8');
  if (n > 65_535) throw new RangeError(`${field} is longer than the 65,535 bytes an MQTT string can hold`);
  return n;
}

export interface ConnectFields {
  clientId: string;
  username: string;
  password: string;
  keepaliveSeconds: number;
}

/** CONNECT with a clean session (§3.1): protocol name "MQTT", level 4, user name and password. */
export function encodeConnect(f: ConnectFields): Buffer {
  const id = utf8Length(f.clientId, 'the client id');
  const user = utf8Length(f.username, 'the user name');
  const password = utf8Length(f.password, 'the password');
  const remaining = 10 + 2 + id + 2 + user + 2 + password;
  const out = Buffer.allocUnsafe(1 + remainingLengthSize(remaining) + remaining);
  let at = writeFixedHeader(out, PacketType.CONNECT << 4, remaining);
  at = writeString(out, at, 'MQTT', 4); // §3.1.2.1
  out[at++] = 4; // protocol level 4 is 3.1.1 (§3.1.2.2)
  out[at++] = 0x80 | 0x40 | 0x02; // user name, password, clean session (§3.1.2.3)
  out.writeUInt16BE(f.keepaliveSeconds, at);
  at += 2;
  at = writeString(out, at, f.clientId, id);
  at = writeString(out, at, f.username, user);
  writeString(out, at, f.password, password);
  return out;
}

/**
 * PUBLISH (§3.3) in a single allocation. `topic` is the topic name already encoded as a
 * string field (see `topicField`): a device publishes to the same topic all its life.
 */
export function encodePublish(topic: Buffer, payload: string, qos: 0 | 1, packetId: number, payloadBytes = Buffer.byteLength(payload, 'utf8')): Buffer {
  const remaining = topic.length + (qos === 1 ? 2 : 0) + payloadBytes;
  if (remaining > MAX_REMAINING_LENGTH) throw new RangeError('the payload is larger than an MQTT packet can hold');
  const out = Buffer.allocUnsafe(1 + remainingLengthSize(remaining) + remaining);
  let at = writeFixedHeader(out, (PacketType.PUBLISH << 4) | (qos << 1), remaining);
  at += topic.copy(out, at);
  if (qos === 1) {
    out.writeUInt16BE(packetId, at);
    at += 2;
  }
  out.write(payload, at, 'utf8');
  return out;
}

/** A topic name as a string field, for `encodePublish`. */
export function topicField(topic: string): Buffer {
  const bytes = utf8Length(topic, 'the topic');
  const out = Buffer.allocUnsafe(2 + bytes);
  writeString(out, 0, topic, bytes);
  return out;
}

/** PUBACK for a QoS 1 PUBLISH the server sent us (§3.4). */
export function encodePuback(packetId: number): Buffer {
  return Buffer.from([PacketType.PUBACK << 4, 2, packetId >> 8, packetId & 0xff]);
}

/** SUBSCRIBE (§3.8): reserved flags 0010 [MQTT-3.8.1-1], each filter with its requested QoS. */
export function encodeSubscribe(packetId: number, filters: string[], qos: 0 | 1): Buffer {
  const lengths = filters.map((f) => utf8Length(f, 'a topic filter'));
  const remaining = 2 + lengths.reduce((sum, n) => sum + 2 + n + 1, 0);
  const out = Buffer.allocUnsafe(1 + remainingLengthSize(remaining) + remaining);
  let at = writeFixedHeader(out, (PacketType.SUBSCRIBE << 4) | 0x02, remaining);
  out.writeUInt16BE(packetId, at);
  at += 2;
  filters.forEach((f, i) => {
    at = writeString(out, at, f, lengths[i]!);
    out[at++] = qos;
  });
  return out;
}

/** UNSUBSCRIBE (§3.10): reserved flags 0010 [MQTT-3.10.1-1]. */
export function encodeUnsubscribe(packetId: number, filters: string[]): Buffer {
  const lengths = filters.map((f) => utf8Length(f, 'a topic filter'));
  const remaining = 2 + lengths.reduce((sum, n) => sum + 2 + n, 0);
  const out = Buffer.allocUnsafe(1 + remainingLengthSize(remaining) + remaining);
  let at = writeFixedHeader(out, (PacketType.UNSUBSCRIBE << 4) | 0x02, remaining);
  out.writeUInt16BE(packetId, at);
  at += 2;
  filters.forEach((f, i) => (at = writeString(out, at, f, lengths[i]!)));
  return out;
}
