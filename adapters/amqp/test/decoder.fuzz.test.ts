// Fuzzing the decoders: random, truncated and corrupted input must give a
// typed error (DecodeError, FramingError) or a clean connection close —
// never another exception, a hang, or an allocation sized by the input's claims.
import assert from 'node:assert/strict';
import net from 'node:net';
import { Reader } from '../src/codec/decoder.js';
import { Writer } from '../src/codec/encoder.js';
import { ConnectionError, DecodeError } from '../src/errors.js';
import { AMQP_HEADER, FrameDecoder, FrameParser, FramingError, writeFrame } from '../src/frames.js';
import { decodeMessage, encodeMessage } from '../src/message.js';
import { AttachType, FlowType, OpenType, Performatives, TransferType } from '../src/performatives.js';
import { AmqpError, Connection, Policy } from '../src/index.js';
import { fuzzCases, fuzzSeed, Random } from './helpers/fuzz.js';

/** Reproducible randomness (helpers/fuzz.ts); each test's title names its seed, to replay with NITROGEN_FUZZ_SEED. */
const rng = (seed: number): (() => number) => {
  const random = new Random(seed);
  return () => random.next();
};
const seed = fuzzSeed(0xa11ce);
const randomBytes = (r: () => number, n: number): Buffer => Buffer.from(Array.from({ length: n }, () => Math.floor(r() * 256)));

function corpus(): Buffer[] {
  const out: Buffer[] = [];
  const w = new Writer();
  encodeMessage(w, {
    header: { durable: true },
    messageAnnotations: { 'x-opt-k': 'v' },
    properties: { messageId: 7, creationTime: new Date(0) },
    applicationProperties: { a: 1, b: [1, 'x', null], c: { d: 2n ** 63n - 1n } },
    body: Buffer.from('telemetry'),
  });
  out.push(w.toBuffer());
  for (const write of [
    (f: Writer) => writeFrame(f, 0, 0, OpenType, { containerId: 'c', maxFrameSize: 512, offeredCapabilities: ['a', 'b'], properties: { x: 1 } }),
    (f: Writer) => writeFrame(f, 0, 0, AttachType, { name: 'l', handle: 1, role: true, source: { address: 'q', filter: { f: 'x' } }, target: { address: 't' }, maxMessageSize: 1000n }),
    (f: Writer) => writeFrame(f, 0, 0, FlowType, { incomingWindow: 1, nextOutgoingId: 2, outgoingWindow: 3, handle: 0, linkCredit: 10 }),
    (f: Writer) => writeFrame(f, 0, 0, TransferType, { handle: 0, deliveryId: 1, deliveryTag: Buffer.from('t'), state: { type: 'rejected', error: { condition: 'amqp:x' } } }),
  ]) {
    const f = new Writer();
    write(f);
    out.push(f.toBuffer());
  }
  return out;
}

const frames = new FrameDecoder('AMQP', Performatives);
const decodeFrameBody = (frame: Buffer, start: number): unknown => frames.decode(frame, start);

function expectTyped(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof DecodeError || e instanceof FramingError || (e instanceof ConnectionError && e.code === 'ERR_AMQP_PROTOCOL'))) throw new Error(`untyped error ${String(e)}`, { cause: e });
  }
}

describe(`AMQP decoder fuzzing (seed ${seed})`, () => {
  it(`random bytes decode to a value or a DecodeError (${fuzzCases(20000)} inputs)`, () => {
    const r = rng(seed);
    for (let i = 0; i < fuzzCases(20000); i++) {
      const input = randomBytes(r, 1 + Math.floor(r() * 64));
      expectTyped(() => new Reader(input).read());
      expectTyped(() => decodeMessage(input));
    }
  });

  it('truncated and corrupted messages and performatives give DecodeError', () => {
    const r = rng(seed + 1);
    for (const valid of corpus()) {
      for (let cut = 0; cut < valid.length; cut++) {
        expectTyped(() => decodeMessage(valid.subarray(0, cut)));
        expectTyped(() => decodeFrameBody(valid.subarray(0, Math.max(8, cut)), 8));
      }
      for (let i = 0; i < fuzzCases(3000); i++) {
        const bad = Buffer.from(valid);
        for (let k = 1 + Math.floor(r() * 4); k > 0; k--) bad[Math.floor(r() * bad.length)] = Math.floor(r() * 256);
        expectTyped(() => decodeMessage(bad));
        expectTyped(() => decodeFrameBody(bad, 8));
      }
    }
  });

  it('declared lengths beyond the input fail without allocating them', () => {
    const claims = [
      [0xb0, 0xff, 0xff, 0xff, 0xff], // vbin32 of 4 GiB
      [0xb1, 0xff, 0xff, 0xff, 0xf0, 0x41], // str32
      [0xd0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], // list32 of 4 G items
      [0xd1, 0x00, 0x00, 0x00, 0x08, 0xff, 0xff, 0xff, 0xfe, 0x40, 0x40, 0x40, 0x40], // map32 count beyond size
      [0xf0, 0x00, 0x00, 0x00, 0x05, 0xff, 0xff, 0xff, 0xff, 0x40], // array32 of 4 G zero-width nulls
      [0xe0, 0x02, 0x10, 0x43], // array8 of 16 uint0 in 2 bytes: allowed, as it is bounded by the input
    ];
    const before = process.memoryUsage().arrayBuffers;
    for (const c of claims.slice(0, 5)) assert.throws(() => new Reader(Buffer.from(c)).read(), DecodeError);
    assert.equal((new Reader(Buffer.from(claims[5])).read() as unknown[]).length, 16);
    assert.ok(process.memoryUsage().arrayBuffers - before < 16 * 1024 * 1024);

    const parser = new FrameParser(() => assert.fail('no frame expected'));
    parser.maxFrameSize = 65536;
    assert.throws(() => parser.push(Buffer.from([0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0])), FramingError);
  });

  it('nesting is bounded: 100,000 nested lists give DecodeError, not a stack overflow', () => {
    const deep = Buffer.alloc(300000);
    for (let i = 0; i < 100000; i++) deep.set([0xc0, 0xff, 0x01], i * 3);
    assert.throws(() => new Reader(deep).read(), DecodeError);
  });

  it('the frame parser survives random chunking of random streams with typed errors only', () => {
    const r = rng(seed + 2);
    for (let i = 0; i < fuzzCases(2000); i++) {
      const parser = new FrameParser((_t, _c, frame, start) => expectTyped(() => decodeFrameBody(frame, start)));
      parser.maxFrameSize = 4096;
      const stream = r() < 0.5 ? randomBytes(r, 200) : Buffer.concat([...corpus().slice(1), randomBytes(r, 20)]);
      try {
        for (let off = 0; off < stream.length;) {
          const n = 1 + Math.floor(r() * 40);
          parser.push(stream.subarray(off, off + n));
          off += n;
        }
      } catch (e) {
        assert.ok(e instanceof FramingError || e instanceof DecodeError || e instanceof ConnectionError, String(e));
      }
    }
  });

  it(`a connection fed garbage by its peer closes cleanly with a typed error (${fuzzCases(40)} peers)`, async () => {
    const r = rng(seed + 3);
    for (let round = 0; round < fuzzCases(40); round++) {
      const garbage =
        round % 2 === 0
          ? randomBytes(r, 64 + Math.floor(r() * 512))
          : (() => {
              const b = Buffer.concat(corpus().slice(1));
              for (let k = 0; k < 6; k++) b[Math.floor(r() * b.length)] = Math.floor(r() * 256);
              return b;
            })();
      const server = net.createServer((socket) => {
        socket.on('error', () => undefined);
        socket.once('data', () => {
          const w = new Writer();
          w.bytes(AMQP_HEADER);
          writeFrame(w, 0, 0, OpenType, { containerId: 'fuzz', maxFrameSize: 4096 });
          socket.write(Buffer.concat([w.toBuffer(), garbage]));
        });
      });
      await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
      const { port } = server.address() as net.AddressInfo;
      const conn = new Connection({ host: '127.0.0.1', port, tls: false }, Policy.derive(Policy.Default, { sasl: 'none', reconnect: { enabled: false }, operationTimeout: 500, idleTimeout: 300 }));
      const closed = new Promise<unknown>((res) => conn.once('closed', res));
      const opened = conn.open().then(
        () => null,
        (e: unknown) => e,
      );
      const outcome = await Promise.race([closed, opened.then((e) => (e === null ? closed : e))]);
      assert.ok(outcome instanceof AmqpError, `round ${round}: ${String(outcome)}`);
      await conn.close();
      server.close();
    }
  });
});
