import assert from 'node:assert/strict';
import { PacketReader, ProtocolViolation, readPublish } from '../src/mqtt/packet-reader.js';
import { PacketType, encodeConnect, encodePublish, encodeSubscribe, encodeUnsubscribe, topicField } from '../src/mqtt/packets.js';

type Seen = Array<{ type: number; flags: number; body: Buffer }>;

function reader(max = 1 << 20): { reader: PacketReader; seen: Seen } {
  const seen: Seen = [];
  return { seen, reader: new PacketReader(max, (type, flags, buf, start, end) => seen.push({ type, flags, body: Buffer.from(buf.subarray(start, end)) })) };
}

/** A server's PUBLISH, as a broker would encode it (MQTT 3.1.1 §3.3). */
function serverPublish(topic: string, payload: string, qos: 0 | 1, id = 0): Buffer {
  return encodePublish(topicField(topic), payload, qos, id);
}

describe('MQTT packets', () => {
  it('encodes CONNECT as MQTT 3.1.1 says: protocol name, level 4, clean session with user name and password', () => {
    const packet = encodeConnect({ clientId: 'c', username: 'car-1', password: 'pw', keepaliveSeconds: 60 });
    assert.equal(packet[0], 0x10);
    assert.equal(packet[1], packet.length - 2);
    assert.deepEqual([...packet.subarray(2, 12)], [0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 0xc2, 0, 60]);
    assert.equal(packet.subarray(12).toString('latin1'), '\x00\x01c\x00\x05car-1\x00\x02pw');
  });

  it('encodes SUBSCRIBE and UNSUBSCRIBE with their reserved flags 0010 [MQTT-3.8.1-1] [MQTT-3.10.1-1]', () => {
    assert.deepEqual([...encodeSubscribe(7, ['a/#'], 1)], [0x82, 8, 0, 7, 0, 3, 0x61, 0x2f, 0x23, 1]);
    assert.deepEqual([...encodeUnsubscribe(7, ['a'])], [0xa2, 5, 0, 7, 0, 1, 0x61]);
  });

  it('reads packets however the stream splits them, multi-byte lengths included', () => {
    const big = 'x'.repeat(20_000); // a Remaining Length of three bytes
    const stream = Buffer.concat([Buffer.from([0x20, 2, 0, 0]), serverPublish('devices/a/commands/x', big, 1, 9), Buffer.from([0x40, 2, 0, 9, 0xd0, 0])]);
    for (const size of [1, 2, 3, 7, 100, 4096, stream.length]) {
      const { reader: r, seen } = reader();
      for (let at = 0; at < stream.length; at += size) r.push(stream.subarray(at, at + size));
      assert.deepEqual(
        seen.map((p) => p.type),
        [PacketType.CONNACK, PacketType.PUBLISH, PacketType.PUBACK, PacketType.PINGRESP],
        `chunks of ${size}`,
      );
      const publish = readPublish(seen[1]!.flags, seen[1]!.body, 0, seen[1]!.body.length);
      assert.equal(publish.topic, 'devices/a/commands/x');
      assert.equal(publish.packetId, 9);
      assert.equal(publish.payload.toString(), big);
    }
  });

  it('keeps what it needs when the read buffer is reused for the next read', () => {
    const { reader: r, seen } = reader();
    const shared = Buffer.alloc(3);
    const bytes = serverPublish('t/x', 'hello', 0);
    for (let at = 0; at < bytes.length; at += 3) {
      const n = bytes.copy(shared, 0, at, at + 3);
      r.push(shared.subarray(0, n));
      shared.fill(0xff); // what the next read would do to it
    }
    assert.equal(readPublish(seen[0]!.flags, seen[0]!.body, 0, seen[0]!.body.length).payload.toString(), 'hello');
  });

  it('refuses a packet over maxPacketBytes from its header alone, before allocating for it', () => {
    const { reader: r } = reader(1024);
    // Announces 268 MB; nothing of it follows.
    assert.throws(
      () => r.push(Buffer.from([0x30, 0xff, 0xff, 0xff, 0x7f])),
      (err: Error) => err instanceof ProtocolViolation && /maxPacketBytes \(1024\)/.test(err.message),
    );
  });

  it('refuses what a server may not send: a fifth length byte, client packet types, bad flags, QoS 3', () => {
    const cases: Array<[string, number[]]> = [
      ['five length bytes', [0x30, 0x80, 0x80, 0x80, 0x80, 0x01]],
      ['CONNECT from a server', [0x10, 0]],
      ['SUBSCRIBE from a server', [0x82, 0]],
      ['PUBACK with flags', [0x42, 2, 0, 1]],
      ['PUBLISH at QoS 3', [0x36, 4, 0, 1, 0x61, 0]],
      ['SUBACK without return codes', [0x90, 2, 0, 1]],
    ];
    for (const [name, bytes] of cases) {
      const { reader: r } = reader();
      assert.throws(() => r.push(Buffer.from(bytes)), ProtocolViolation, name);
    }
  });
});
