import assert from 'node:assert/strict';
import { ClientError } from '../src/errors.js';
import { MqttConnection, type StreamOpener } from '../src/mqtt/connection.js';
import { encodePublish, topicField } from '../src/mqtt/packets.js';
import { SseParser } from '../src/sse.js';

/**
 * Whatever bytes a server sends, the client either reads them or closes the connection with
 * NITROGEN_CLIENT_PROTOCOL: nothing throws out of a socket's data callback, and nothing is kept
 * beyond maxPacketBytes. Fixed seed and few cases in `npm test`; `npm run fuzz` scales them
 * (NITROGEN_FUZZ_SCALE) and draws a fresh seed unless NITROGEN_FUZZ_SEED names one.
 */
const scale = Math.max(1, Number(process.env.NITROGEN_FUZZ_SCALE ?? 1) || 1);
const seed = process.env.NITROGEN_FUZZ_SEED ? Number(process.env.NITROGEN_FUZZ_SEED) >>> 0 : scale > 1 ? (Math.random() * 2 ** 32) >>> 0 : 0x5eed;

/** xorshift32, so a failing case can be replayed from its seed. */
function random(s: number) {
  let x = s || 1;
  const next = () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  return { int, bytes: (n: number) => Buffer.from(Array.from({ length: n }, () => int(256))) };
}

/** Honest server traffic after CONNACK: PUBLISHes (QoS 0 and 1), PUBACKs, SUBACKs, PINGRESPs. */
function honest(r: ReturnType<typeof random>): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < 1 + r.int(6); i++) {
    switch (r.int(4)) {
      case 0:
        parts.push(encodePublish(topicField(`devices/x/commands/${r.int(9)}`), JSON.stringify({ id: String(r.int(1e6)), type: 't', from: 'x', ts: '2026-01-01T00:00:00Z', body: r.int(100) }), r.int(2) as 0 | 1, 1 + r.int(65535)));
        break;
      case 1:
        parts.push(Buffer.from([0x40, 2, r.int(256), r.int(256)]));
        break;
      case 2:
        parts.push(Buffer.from([0x90, 3, r.int(256), r.int(256), r.int(2) ? 1 : 0x80]));
        break;
      default:
        parts.push(Buffer.from([0xd0, 0]));
    }
  }
  return Buffer.concat(parts);
}

function mutate(r: ReturnType<typeof random>, input: Buffer): Buffer {
  let out = Buffer.from(input);
  for (let e = 0; e < 1 + r.int(4); e++) {
    const at = out.length === 0 ? 0 : r.int(out.length);
    const op = r.int(4);
    if (op === 0 && out.length > 0) out[at] = r.int(256);
    else if (op === 1) out = out.subarray(0, at);
    else if (op === 2) out = Buffer.concat([out.subarray(0, at), r.bytes(1 + r.int(8)), out.subarray(at)]);
    else out = Buffer.concat([out.subarray(0, at), out.subarray(at, at + 1 + r.int(16)), out.subarray(at)]);
  }
  return out;
}

describe('fuzz: bytes from a server', () => {
  it(`MQTT: reads or closes with NITROGEN_CLIENT_PROTOCOL, never throws (seed ${seed})`, async () => {
    const r = random(seed);
    for (let c = 0; c < 300 * scale; c++) {
      let feed!: (chunk: Buffer) => void;
      const opener: StreamOpener = ({ onData }) => ((feed = onData), { write() {}, end() {}, destroy() {} });
      const closed: Array<Error | null> = [];
      const opening = MqttConnection.open(
        opener,
        { clientId: 'c', username: 'u', password: 'p', keepaliveSeconds: 0, connectTimeoutMs: 1000, maxPacketBytes: 4096 },
        {
          onPuback() {},
          onPublish: (m) => void m.payload.toString(),
          onClose: (error) => closed.push(error),
        },
      );
      feed(Buffer.from([0x20, 2, 0, 0]));
      const connection = await opening;
      const bytes = mutate(r, honest(r));
      try {
        for (let at = 0; at < bytes.length;) {
          const n = 1 + r.int(64);
          feed(bytes.subarray(at, at + n));
          at += n;
        }
      } catch (err) {
        assert.fail(`case ${c} (seed ${seed}): ${(err as Error).stack}`);
      }
      if (!connection.open) assert.ok(closed[0] instanceof ClientError && closed[0].code === 'NITROGEN_CLIENT_PROTOCOL', `case ${c} (seed ${seed}): closed with ${closed[0]}`);
      connection.close();
    }
  });

  it(`SSE: reads events or refuses with NITROGEN_CLIENT_PROTOCOL, never anything else (seed ${seed})`, () => {
    const r = random(seed ^ 0xabcdef);
    const alphabet = ['data: ', 'event: message', 'id: 1', ': c', '\n', '\r', '\r\n', 'x', '{"a":1}', ':', ' '];
    for (let c = 0; c < 300 * scale; c++) {
      const parser = new SseParser(200, () => {});
      try {
        for (let i = 0; i < r.int(200); i++) parser.push(Array.from({ length: 1 + r.int(8) }, () => alphabet[r.int(alphabet.length)]).join(''));
      } catch (err) {
        assert.ok(err instanceof ClientError && err.code === 'NITROGEN_CLIENT_PROTOCOL', `case ${c} (seed ${seed}): ${(err as Error).stack}`);
      }
    }
  });
});
