/**
 * Just enough MQTT 3.1.1 to drive load without a client library in the way: CONNECT and
 * PUBLISH encoded by hand (MQTT 3.1.1 §3.1, §3.3), PUBACK and CONNACK recognised by their
 * first byte. A benchmark's load generator must cost far less than the server it measures.
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

function utf8Field(s: string): Buffer {
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
export const PINGRESP = 0xd0;
