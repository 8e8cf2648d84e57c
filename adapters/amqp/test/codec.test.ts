// The codec against rhea's, both ways, for every AMQP type: what we encode,
// rhea decodes to the same value; what rhea encodes, we decode to it.
import assert from 'node:assert/strict';
import rhea from 'rhea';
import { Writer } from '../src/codec/encoder.js';
import { Reader } from '../src/codec/decoder.js';
import { AmqpSymbol, Char, Decimal, Described, Uuid, types } from '../src/codec/types.js';
import { decodeMessage, encodeMessage, type Message } from '../src/message.js';

// rhea's codec API is untyped JavaScript.
const T = rhea.types as any;
const R = rhea.message as any;

interface Case {
  name: string;
  ours: unknown;
  rhea: () => unknown;
  expect: unknown;
}

const u64 = (v: bigint): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt.asUintN(64, v));
  return b;
};
const bytes = (n: number, seed = 1): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff));
const uuid = bytes(16, 7);
const big = (n: number) => Array.from({ length: n }, (_, i) => i * 1000 - 7);
const bigMap = Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`key-${i}`, i % 3 === 0 ? `v${i}` : i]));

/** Converts rhea's decoded Typed tree into our JavaScript representation. */
function fromRhea(t: any): unknown {
  const code: number = t.type.typecode;
  const v = t.value;
  const wrap = (x: unknown) => (t.descriptor ? new Described(fromRhea(t.descriptor), x) : x);
  switch (code) {
    case 0x40:
      return wrap(null);
    case 0x56:
      return wrap(Boolean(v)); // rhea reads the 0x56 byte as a number
    case 0x80:
    case 0x53:
    case 0x44:
      return wrap(Buffer.isBuffer(v) ? v.readBigUInt64BE() : BigInt(v ?? 0));
    case 0x81:
    case 0x55:
      return wrap(Buffer.isBuffer(v) ? v.readBigInt64BE() : BigInt(v));
    case 0x74:
      return wrap(new Decimal(32, v));
    case 0x84:
      return wrap(new Decimal(64, v));
    case 0x94:
      return wrap(new Decimal(128, v));
    case 0x73:
      return wrap(new Char(v));
    case 0x98:
      return wrap(new Uuid(v));
    case 0xa3:
    case 0xb3:
      return wrap(new AmqpSymbol(v));
    case 0x45:
    case 0xc0:
    case 0xd0:
      return wrap((v as any[]).map(fromRhea));
    case 0xc1:
    case 0xd1: {
      const kv = (v as any[]).map(fromRhea);
      const plain = kv.every((k, i) => i % 2 === 1 || typeof k === 'string' || k instanceof AmqpSymbol);
      if (plain) {
        const o: Record<string, unknown> = {};
        for (let i = 0; i < kv.length; i += 2) o[String(kv[i])] = kv[i + 1];
        return wrap(o);
      }
      const m = new Map();
      for (let i = 0; i < kv.length; i += 2) m.set(kv[i], kv[i + 1]);
      return wrap(m);
    }
    case 0xe0:
    case 0xf0: {
      const items = (v as any[]).map(fromRhea);
      const d = t.array_constructor?.descriptor;
      return wrap(d ? items.map((x) => new Described(fromRhea(d), x)) : items);
    }
    default:
      return wrap(v);
  }
}

function ourEncode(v: unknown): Buffer {
  const w = new Writer(16);
  w.value(v);
  return w.toBuffer();
}
function ourDecode(b: Buffer): unknown {
  const r = new Reader(b);
  const v = r.read();
  assert.equal(r.remaining, 0, 'trailing bytes');
  return v;
}
function rheaEncode(t: unknown): Buffer {
  const w = new T.Writer();
  w.write(t);
  return w.toBuffer();
}
function rheaDecode(b: Buffer): unknown {
  return fromRhea(new T.Reader(b).read());
}

const cases: Case[] = [
  { name: 'null', ours: null, rhea: () => T.Null(), expect: null },
  { name: 'true', ours: true, rhea: () => T.True(), expect: true },
  { name: 'false', ours: false, rhea: () => T.False(), expect: false },
  { name: 'boolean (0x56)', ours: types.boolean(true), rhea: () => T.Boolean(1), expect: true },
  { name: 'ubyte 0', ours: types.ubyte(0), rhea: () => T.Ubyte(0), expect: 0 },
  { name: 'ubyte 255', ours: types.ubyte(255), rhea: () => T.Ubyte(255), expect: 255 },
  { name: 'ushort 65535', ours: types.ushort(65535), rhea: () => T.Ushort(65535), expect: 65535 },
  { name: 'uint0', ours: types.uint(0), rhea: () => T.Uint0(), expect: 0 },
  { name: 'smalluint 255', ours: types.uint(255), rhea: () => T.SmallUint(255), expect: 255 },
  { name: 'uint max', ours: types.uint(4294967295), rhea: () => T.Uint(4294967295), expect: 4294967295 },
  { name: 'ulong0', ours: types.ulong(0n), rhea: () => T.Ulong0(), expect: 0n },
  { name: 'smallulong', ours: types.ulong(200n), rhea: () => T.SmallUlong(200), expect: 200n },
  // (rhea returns an inexact number for ulongs below about 2^53 + 2^32, so the test uses 2^60)
  { name: 'ulong 2^60+1', ours: types.ulong(2n ** 60n + 1n), rhea: () => T.Ulong(u64(2n ** 60n + 1n)), expect: 2n ** 60n + 1n },
  { name: 'ulong max', ours: 2n ** 64n - 1n, rhea: () => T.Ulong(u64(2n ** 64n - 1n)), expect: 2n ** 64n - 1n },
  { name: 'byte -128', ours: types.byte(-128), rhea: () => T.Byte(-128), expect: -128 },
  { name: 'byte 127', ours: types.byte(127), rhea: () => T.Byte(127), expect: 127 },
  { name: 'short -32768', ours: types.short(-32768), rhea: () => T.Short(-32768), expect: -32768 },
  { name: 'smallint -1', ours: -1, rhea: () => T.SmallInt(-1), expect: -1 },
  { name: 'int min', ours: -2147483648, rhea: () => T.Int(-2147483648), expect: -2147483648 },
  { name: 'int max', ours: 2147483647, rhea: () => T.Int(2147483647), expect: 2147483647 },
  { name: 'smalllong -100', ours: -100n, rhea: () => T.SmallLong(-100), expect: -100n },
  { name: 'long from a safe integer', ours: -(2 ** 40), rhea: () => T.Long(-(2 ** 40)), expect: -(2n ** 40n) },
  { name: 'long min', ours: -(2n ** 63n), rhea: () => T.Long(u64(-(2n ** 63n))), expect: -(2n ** 63n) },
  { name: 'long max', ours: 2n ** 63n - 1n, rhea: () => T.Long(u64(2n ** 63n - 1n)), expect: 2n ** 63n - 1n },
  { name: 'float', ours: types.float(-1.5), rhea: () => T.Float(-1.5), expect: -1.5 },
  { name: 'double', ours: Math.PI, rhea: () => T.Double(Math.PI), expect: Math.PI },
  { name: 'double -1e300', ours: -1e300, rhea: () => T.Double(-1e300), expect: -1e300 },
  { name: 'double infinity', ours: Infinity, rhea: () => T.Double(Infinity), expect: Infinity },
  { name: 'decimal32', ours: types.decimal32(bytes(4)), rhea: () => T.Decimal32(bytes(4)), expect: new Decimal(32, bytes(4)) },
  { name: 'decimal64', ours: types.decimal64(bytes(8)), rhea: () => T.Decimal64(bytes(8)), expect: new Decimal(64, bytes(8)) },
  { name: 'decimal128', ours: types.decimal128(bytes(16)), rhea: () => T.Decimal128(bytes(16)), expect: new Decimal(128, bytes(16)) },
  { name: 'char', ours: types.char('A'), rhea: () => T.CharUTF32(65), expect: new Char(65) },
  { name: 'char beyond the BMP', ours: types.char('😀'), rhea: () => T.CharUTF32(0x1f600), expect: new Char(0x1f600) },
  { name: 'timestamp', ours: new Date(1700000000123), rhea: () => T.Timestamp(1700000000123), expect: new Date(1700000000123) },
  { name: 'timestamp before 1970', ours: new Date(-86400000), rhea: () => T.Timestamp(-86400000), expect: new Date(-86400000) },
  { name: 'uuid', ours: new Uuid(uuid), rhea: () => T.Uuid(uuid), expect: new Uuid(uuid) },
  { name: 'binary empty', ours: Buffer.alloc(0), rhea: () => T.Vbin8(Buffer.alloc(0)), expect: Buffer.alloc(0) },
  { name: 'vbin8', ours: bytes(255), rhea: () => T.Vbin8(bytes(255)), expect: bytes(255) },
  { name: 'vbin32', ours: bytes(70000), rhea: () => T.Vbin32(bytes(70000)), expect: bytes(70000) },
  { name: 'string empty', ours: '', rhea: () => T.Str8(''), expect: '' },
  { name: 'string UTF-8', ours: 'héllo wörld ✓ 😀', rhea: () => T.Str8('héllo wörld ✓ 😀'), expect: 'héllo wörld ✓ 😀' },
  { name: 'str8 of exactly 255 bytes', ours: '€'.repeat(85), rhea: () => T.Str8('€'.repeat(85)), expect: '€'.repeat(85) },
  { name: 'str32 of 258 bytes', ours: '€'.repeat(86), rhea: () => T.Str32('€'.repeat(86)), expect: '€'.repeat(86) },
  { name: 'str32 of 100 KiB', ours: 'x'.repeat(102400), rhea: () => T.Str32('x'.repeat(102400)), expect: 'x'.repeat(102400) },
  { name: 'symbol', ours: types.symbol('amqp:accepted:list'), rhea: () => T.Sym8('amqp:accepted:list'), expect: new AmqpSymbol('amqp:accepted:list') },
  { name: 'sym32', ours: types.symbol('s'.repeat(300)), rhea: () => T.Sym32('s'.repeat(300)), expect: new AmqpSymbol('s'.repeat(300)) },
  { name: 'list0', ours: [], rhea: () => T.List0(), expect: [] },
  { name: 'list8 mixed', ours: [1, 'a', null, true], rhea: () => T.List8([T.SmallInt(1), T.Str8('a'), T.Null(), T.True()]), expect: [1, 'a', null, true] },
  { name: 'nested lists', ours: [[1, [2, []]], 'x'], rhea: () => T.List32([T.List32([T.SmallInt(1), T.List32([T.SmallInt(2), T.List0()])]), T.Str8('x')]), expect: [[1, [2, []]], 'x'] },
  { name: 'list32 of 1000 ints', ours: big(1000), rhea: () => T.List32(big(1000).map((n) => T.wrap_int(n))), expect: big(1000) },
  { name: 'map empty', ours: {}, rhea: () => T.Map8([]), expect: {} },
  { name: 'map8', ours: { a: 1, b: 'x' }, rhea: () => T.Map8([T.Str8('a'), T.SmallInt(1), T.Str8('b'), T.Str8('x')]), expect: { a: 1, b: 'x' } },
  { name: 'map32 of 500 entries', ours: bigMap, rhea: () => T.wrap_map(bigMap), expect: bigMap },
  {
    name: 'map with integer keys',
    ours: new Map([
      [1, 'one'],
      [2, 'two'],
    ]),
    rhea: () => T.Map8([T.SmallInt(1), T.Str8('one'), T.SmallInt(2), T.Str8('two')]),
    expect: new Map([
      [1, 'one'],
      [2, 'two'],
    ]),
  },
  { name: 'map with symbol keys', ours: new Map([[types.symbol('k'), 1]]), rhea: () => T.Map8([T.Sym8('k'), T.SmallInt(1)]), expect: { k: 1 } },
  { name: 'array of int', ours: types.array('int', [1, -2, 2147483647]), rhea: () => T.Array8([1, -2, 2147483647], 0x71), expect: [1, -2, 2147483647] },
  { name: 'array empty', ours: types.array('int', []), rhea: () => T.Array8([], 0x71), expect: [] },
  { name: 'array of symbols', ours: types.array('symbol', ['a', 'bc']), rhea: () => T.Array32(['a', 'bc'], 0xb3), expect: [new AmqpSymbol('a'), new AmqpSymbol('bc')] },
  { name: 'array of strings', ours: types.array('string', ['x', 'ü']), rhea: () => T.Array32(['x', 'ü'], 0xb1), expect: ['x', 'ü'] },
  { name: 'array of booleans', ours: types.array('boolean', [true, false]), rhea: () => T.Array8([1, 0], 0x56), expect: [true, false] },
  { name: 'array of double', ours: types.array('double', [0.5, -2]), rhea: () => T.Array8([0.5, -2], 0x82), expect: [0.5, -2] },
  { name: 'array of ulong extremes', ours: types.array('ulong', [0n, 2n ** 64n - 1n]), rhea: () => T.Array8([u64(0n), u64(2n ** 64n - 1n)], 0x80), expect: [0n, 2n ** 64n - 1n] },
  { name: 'array of long extremes', ours: types.array('long', [-(2n ** 63n), 2n ** 63n - 1n]), rhea: () => T.Array8([u64(-(2n ** 63n)), u64(2n ** 63n - 1n)], 0x81), expect: [-(2n ** 63n), 2n ** 63n - 1n] },
  { name: 'array of uuid', ours: types.array('uuid', [new Uuid(uuid)]), rhea: () => T.Array8([uuid], 0x98), expect: [new Uuid(uuid)] },
  { name: 'array of 300 ints (array32)', ours: types.array('int', big(300)), rhea: () => T.Array32(big(300), 0x71), expect: big(300) },
  {
    name: 'array of described strings',
    ours: types.array({ descriptor: types.symbol('com.example:tag'), type: 'string' }, ['a', 'b']),
    rhea: () => T.Array32(['a', 'b'], 0xb1, T.Sym8('com.example:tag')),
    expect: [new Described(new AmqpSymbol('com.example:tag'), 'a'), new Described(new AmqpSymbol('com.example:tag'), 'b')],
  },
  {
    name: 'array of described ulong-coded values',
    ours: types.array({ descriptor: 0x77n, type: 'int' }, [5]),
    rhea: () => T.Array8([5], 0x71, T.SmallUlong(0x77)),
    expect: [new Described(0x77n, 5)],
  },
  { name: 'described, ulong descriptor', ours: types.described(0x1234n, 'v'), rhea: () => T.described(T.Ulong(0x1234), T.Str8('v')), expect: new Described(0x1234n, 'v') },
  { name: 'described, symbol descriptor', ours: types.described(types.symbol('x:y'), [1]), rhea: () => T.described(T.Sym8('x:y'), T.List8([T.SmallInt(1)])), expect: new Described(new AmqpSymbol('x:y'), [1]) },
];

describe('AMQP codec against rhea', () => {
  for (const c of cases) {
    it(`${c.name}: ours → rhea and rhea → ours`, () => {
      assert.deepStrictEqual(rheaDecode(ourEncode(c.ours)), c.expect, 'rhea decoding our encoding');
      assert.deepStrictEqual(ourDecode(rheaEncode(c.rhea())), c.expect, "us decoding rhea's encoding");
      assert.deepStrictEqual(ourDecode(ourEncode(c.ours)), c.expect, 'our round trip');
    });
  }

  it('double NaN survives both ways', () => {
    assert.ok(Number.isNaN(rheaDecode(ourEncode(NaN))));
    assert.ok(Number.isNaN(ourDecode(rheaEncode(T.Double(NaN)))));
  });

  it('timestamps beyond the range of Date stay exact', () => {
    const w = new Writer();
    w.timestamp(2n ** 62n);
    const v = ourDecode(w.toBuffer()) as { type: string; value: bigint };
    assert.equal(v.type, 'timestamp');
    assert.equal(v.value, 2n ** 62n);
  });

  it("messages: rhea decodes ours and we decode rhea's, every section", () => {
    const m: Message = {
      header: { durable: true, priority: 9, ttl: 60000, firstAcquirer: true, deliveryCount: 3 },
      deliveryAnnotations: { 'x-opt-lock': 'l1' },
      messageAnnotations: { 'x-opt-partition-key': 'p', 'x-opt-n': 5 },
      properties: {
        messageId: 'id-1',
        userId: Buffer.from('me'),
        to: '/queue/q',
        subject: 's',
        replyTo: 'r',
        correlationId: 42n,
        contentType: 'application/json',
        contentEncoding: 'utf-8',
        absoluteExpiryTime: new Date(1800000000000),
        creationTime: new Date(1700000000000),
        groupId: 'g',
        groupSequence: 7,
        replyToGroupId: 'rg',
      },
      applicationProperties: { device: 'd-1', temp: 21.5, n: -3, ok: true },
      body: { reading: [1, 2, 3], unit: 'C' },
      footer: { 'x-hash': 'abc' },
    };
    const w = new Writer();
    encodeMessage(w, m);
    const r = R.decode(w.toBuffer());
    assert.equal(r.durable, true);
    assert.equal(r.priority, 9);
    assert.equal(r.ttl, 60000);
    assert.equal(r.first_acquirer, true);
    assert.equal(r.delivery_count, 3);
    assert.deepEqual(r.delivery_annotations, { 'x-opt-lock': 'l1' });
    assert.deepEqual(r.message_annotations, { 'x-opt-partition-key': 'p', 'x-opt-n': 5 });
    assert.equal(r.message_id, 'id-1');
    assert.equal(r.to, '/queue/q');
    assert.equal(r.correlation_id, 42);
    assert.equal(r.content_type, 'application/json');
    assert.equal(r.group_sequence, 7);
    assert.equal(r.creation_time.getTime(), 1700000000000);
    assert.deepEqual(r.application_properties, m.applicationProperties);
    assert.deepEqual(r.body, m.body);
    assert.deepEqual(r.footer, { 'x-hash': 'abc' });

    const back = decodeMessage(
      R.encode({
        durable: true,
        priority: 9,
        message_id: 'id-1',
        to: '/queue/q',
        content_type: 'application/json',
        creation_time: new Date(1700000000000),
        message_annotations: { 'x-opt-partition-key': 'p' },
        application_properties: { device: 'd-1', temp: 21.5 },
        body: R.data_section(Buffer.from('payload')),
      }),
    );
    assert.equal(back.header?.durable, true);
    assert.equal(back.header?.priority, 9);
    assert.equal(back.properties?.messageId, 'id-1');
    assert.equal(back.properties?.contentType, 'application/json');
    assert.equal(back.properties?.creationTime?.getTime(), 1700000000000);
    assert.deepEqual(back.messageAnnotations, { 'x-opt-partition-key': 'p' });
    assert.deepEqual(back.applicationProperties, { device: 'd-1', temp: 21.5 });
    assert.equal(back.bodyType, 'data');
    assert.equal((back.body as Buffer).toString(), 'payload');
  });

  it('amqp-sequence and multiple data sections round-trip', () => {
    for (const m of [
      { body: [[1, 2], ['a']], bodyType: 'sequence' as const },
      { body: [Buffer.from('a'), Buffer.from('b')], bodyType: 'data' as const },
    ]) {
      const w = new Writer();
      encodeMessage(w, m);
      assert.deepStrictEqual(decodeMessage(w.toBuffer()), m);
    }
  });
});
