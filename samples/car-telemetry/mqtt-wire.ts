/**
 * Just enough MQTT 3.1.1 to drive load without a client library in the way: CONNECT and
 * PUBLISH encoded by hand (MQTT 3.1.1 §3.1, §3.3), incoming packets split by their fixed
 * header (§2.2) and recognised by their first byte. A simulator of many cars, or a benchmark's
 * load generator, must cost far less than the server it drives. It lives with the sample, so
 * the sample stands alone; the benchmarks borrow it.
 */
function remainingLength(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0);
  return out;
}

/** A UTF-8 string field: two length bytes, then the bytes (§1.5.3). Encode a topic once, reuse it. */
export function utf8Field(s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  const out = Buffer.alloc(2 + b.length);
  out.writeUInt16BE(b.length, 0);
  b.copy(out, 2);
  return out;
}

export function connectPacket(clientId: string, username?: string, password?: string, keepalive = 60): Buffer {
  let flags = 0x02; // clean session
  if (username !== undefined) flags |= 0x80;
  if (password !== undefined) flags |= 0x40;
  const variable = Buffer.concat([utf8Field('MQTT'), Buffer.from([4, flags, keepalive >> 8, keepalive & 0xff])]);
  const payload = Buffer.concat([utf8Field(clientId), ...(username !== undefined ? [utf8Field(username)] : []), ...(password !== undefined ? [utf8Field(password)] : [])]);
  const body = Buffer.concat([variable, payload]);
  return Buffer.concat([Buffer.from([0x10, ...remainingLength(body.length)]), body]);
}

/** A QoS 1 PUBLISH template; `packetIdOffset` is where to write each message's packet id. */
export function publishTemplate(topic: string, payload: Buffer): { packet: Buffer; packetIdOffset: number } {
  const topicField = utf8Field(topic);
  const length = topicField.length + 2 + payload.length;
  const header = Buffer.from([0x32, ...remainingLength(length)]);
  const packet = Buffer.concat([header, topicField, Buffer.alloc(2), payload]);
  return { packet, packetIdOffset: header.length + topicField.length };
}

export const PINGREQ = Buffer.from([0xc0, 0x00]);
export const CONNACK = 0x20;
export const PUBACK = 0x40;

/**
 * One PUBLISH with its own payload, in a single allocation: QoS 0, or QoS 1 with `packetId`
 * (1-65535). `topic` is the topic name already encoded by `utf8Field`.
 */
export function publishPacket(topic: Buffer, payload: string, qos: 0 | 1, packetId = 0): Buffer {
  const payloadBytes = Buffer.byteLength(payload);
  const length = topic.length + (qos === 1 ? 2 : 0) + payloadBytes;
  const lengthBytes = remainingLength(length);
  const packet = Buffer.allocUnsafe(1 + lengthBytes.length + length);
  packet[0] = 0x30 | (qos << 1);
  let offset = 1;
  for (const b of lengthBytes) packet[offset++] = b;
  offset += topic.copy(packet, offset);
  if (qos === 1) offset = packet.writeUInt16BE(packetId, offset);
  packet.write(payload, offset, 'utf8');
  return packet;
}

/**
 * Splits received bytes into whole packets (§2.2): calls `onPacket` with each packet's type
 * (the high nibble of its first byte, e.g. `PUBACK`) and where its variable header starts, and
 * returns the bytes of an unfinished packet to put in front of the next chunk (or null).
 */
export function readPackets(buf: Buffer, onPacket: (type: number, buf: Buffer, start: number, length: number) => void): Buffer | null {
  let offset = 0;
  while (offset + 2 <= buf.length) {
    let length = 0;
    let multiplier = 1;
    let i = offset + 1;
    let byte = 0x80;
    while (byte & 0x80 && i < buf.length) {
      byte = buf[i++]!;
      length += (byte & 0x7f) * multiplier;
      multiplier *= 128;
    }
    if (byte & 0x80 || i + length > buf.length) break;
    onPacket(buf[offset]! & 0xf0, buf, i, length);
    offset = i + length;
  }
  return offset < buf.length ? buf.subarray(offset) : null;
}

export const DISCONNECT = Buffer.from([0xe0, 0x00]);
