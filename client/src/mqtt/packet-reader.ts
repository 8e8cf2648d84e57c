import { SERVER_PACKETS } from './packets.js';

/** The server broke MQTT 3.1.1: the connection is closed (§4.8), never read further. */
export class ProtocolViolation extends Error {
  override name = 'ProtocolViolation';
}

/** Called once per whole packet; the body is `buf[start, end)` and only valid during the call. */
export type PacketHandler = (type: number, flags: number, buf: Buffer, start: number, end: number) => void;

/**
 * Splits a server's byte stream into packets (§2.2). Chunks may come from a read buffer that is
 * reused after the call, so whatever is kept across calls is copied: the few bytes of a split
 * fixed header, or a packet whose size is known, into one buffer of exactly that size (a large
 * message arriving in many reads is copied once, not concatenated again at each read).
 * A packet announcing more than `maxPacketBytes` is refused before anything is allocated for it.
 */
export class PacketReader {
  private head: Buffer | null = null;
  private partial: Buffer | null = null;
  private filled = 0;
  private partialBodyStart = 0;

  constructor(
    private readonly maxPacketBytes: number,
    private readonly onPacket: PacketHandler,
  ) {}

  push(chunk: Buffer): void {
    let at = 0;
    if (this.partial) {
      const take = Math.min(this.partial.length - this.filled, chunk.length);
      chunk.copy(this.partial, this.filled, 0, take);
      this.filled += take;
      if (this.filled < this.partial.length) return;
      const packet = this.partial;
      this.partial = null;
      this.dispatch(packet, 0, this.partialBodyStart, packet.length);
      at = take;
    } else if (this.head) {
      chunk = Buffer.concat([this.head, chunk]);
      this.head = null;
    }
    while (at < chunk.length) {
      // Remaining Length: 1-4 bytes of 7 bits, least significant first (§2.2.3).
      let remaining = 0;
      let multiplier = 1;
      let i = at + 1;
      let complete = false;
      while (i < chunk.length) {
        const byte = chunk[i++]!;
        remaining += (byte & 0x7f) * multiplier;
        if ((byte & 0x80) === 0) {
          complete = true;
          break;
        }
        multiplier *= 128;
        if (i - at - 1 >= 4) throw new ProtocolViolation('malformed Remaining Length: more than four bytes (MQTT 3.1.1 §2.2.3)');
      }
      if (!complete) {
        this.head = Buffer.from(chunk.subarray(at));
        return;
      }
      const total = i - at + remaining;
      if (total > this.maxPacketBytes) {
        throw new ProtocolViolation(`the server sent a ${total}-byte packet, more than maxPacketBytes (${this.maxPacketBytes})`);
      }
      if (at + total > chunk.length) {
        this.partial = Buffer.allocUnsafe(total);
        this.filled = chunk.copy(this.partial, 0, at);
        this.partialBodyStart = i - at;
        return;
      }
      this.dispatch(chunk, at, i, at + total);
      at += total;
    }
  }

  private dispatch(buf: Buffer, start: number, bodyStart: number, end: number): void {
    const type = buf[start]! >> 4;
    const flags = buf[start]! & 0x0f;
    const spec = SERVER_PACKETS[type];
    if (!spec) throw new ProtocolViolation(`a server may not send packet type ${type} to a client (MQTT 3.1.1 §2.2.1)`);
    // Reserved flags must be as the table says [MQTT-2.2.2-2]; a PUBLISH may not have QoS 3 [MQTT-3.3.1-4].
    if (spec.flags === 'publish' ? (flags & 0x06) === 0x06 : flags !== spec.flags) {
      throw new ProtocolViolation(`${spec.name} with invalid fixed-header flags ${flags}`);
    }
    if (end - bodyStart < spec.minLength) throw new ProtocolViolation(`${spec.name} is too short (${end - bodyStart} bytes)`);
    this.onPacket(type, flags, buf, bodyStart, end);
  }
}

export interface IncomingPublish {
  topic: string;
  qos: number;
  packetId: number;
  retain: boolean;
  /** The payload, valid only during the handler call (it may lie in a reused read buffer). */
  payload: Buffer;
}

/** PUBLISH's variable header and payload (§3.3.2, §3.3.3). */
export function readPublish(flags: number, buf: Buffer, start: number, end: number): IncomingPublish {
  const qos = (flags >> 1) & 0x03;
  const topicLength = buf.readUInt16BE(start);
  let at = start + 2 + topicLength;
  if (at + (qos > 0 ? 2 : 0) > end) throw new ProtocolViolation('PUBLISH topic runs past the end of the packet');
  const topic = buf.toString('utf8', start + 2, at);
  let packetId = 0;
  if (qos > 0) {
    packetId = buf.readUInt16BE(at);
    at += 2;
  }
  return { topic, qos, packetId, retain: (flags & 0x01) === 1, payload: buf.subarray(at, end) };
}
