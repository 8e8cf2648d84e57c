// AMQP 1.0 encoder (part 1, §1.2 and §1.6). A Writer appends into one
// growable buffer that the caller reuses, so the hot path allocates nothing:
// compounds are written optimistically in their 1-byte-size form and widened
// in place (one memmove) only if they outgrow it.
import { EncodeError } from '../errors.js';
import { AmqpSymbol, ARRAY_ELEMENT_CODE, Char, Decimal, Described, Typed, Uuid, type TypeName } from './types.js';

const TWO_32 = 4294967296;
const MAX_LONG = 0x7fffffffffffffffn;
const MIN_LONG = -0x8000000000000000n;
const MAX_ULONG = 0xffffffffffffffffn;

export class Writer {
  buf: Buffer;
  pos = 0;
  private readonly initial: number;

  constructor(capacity = 4096) {
    this.initial = capacity;
    this.buf = Buffer.allocUnsafe(capacity);
  }

  ensure(n: number): void {
    if (this.pos + n > this.buf.length) this.grow(n);
  }

  private grow(n: number): void {
    let capacity = this.buf.length * 2;
    while (capacity < this.pos + n) capacity *= 2;
    const bigger = Buffer.allocUnsafe(capacity);
    this.buf.copy(bigger, 0, 0, this.pos);
    this.buf = bigger;
  }

  /** Forget the content; drop a buffer that a large message grew past `keep` bytes. */
  reset(keep = 1 << 20): void {
    this.pos = 0;
    if (this.buf.length > keep) this.buf = Buffer.allocUnsafe(this.initial);
  }

  /** A copy of what was written (the writer stays reusable). */
  toBuffer(): Buffer {
    const out = Buffer.allocUnsafe(this.pos);
    this.buf.copy(out, 0, 0, this.pos);
    return out;
  }

  // ---- raw big-endian numbers (no constructor) ----
  u8(v: number): void {
    this.ensure(1);
    this.buf[this.pos++] = v;
  }
  u16(v: number): void {
    this.ensure(2);
    this.buf.writeUInt16BE(v, this.pos);
    this.pos += 2;
  }
  u32(v: number): void {
    this.ensure(4);
    this.buf.writeUInt32BE(v, this.pos);
    this.pos += 4;
  }
  i8(v: number): void {
    this.ensure(1);
    this.buf.writeInt8(v, this.pos);
    this.pos += 1;
  }
  i16(v: number): void {
    this.ensure(2);
    this.buf.writeInt16BE(v, this.pos);
    this.pos += 2;
  }
  i32(v: number): void {
    this.ensure(4);
    this.buf.writeInt32BE(v, this.pos);
    this.pos += 4;
  }
  f32(v: number): void {
    this.ensure(4);
    this.buf.writeFloatBE(v, this.pos);
    this.pos += 4;
  }
  f64(v: number): void {
    this.ensure(8);
    this.buf.writeDoubleBE(v, this.pos);
    this.pos += 8;
  }
  u64(v: bigint): void {
    this.ensure(8);
    this.buf.writeBigUInt64BE(v, this.pos);
    this.pos += 8;
  }
  /** A safe-integer number as 64-bit two's complement, without going through BigInt. */
  i64n(v: number): void {
    this.ensure(8);
    const hi = Math.floor(v / TWO_32);
    this.buf.writeInt32BE(hi, this.pos);
    this.buf.writeUInt32BE(v - hi * TWO_32, this.pos + 4);
    this.pos += 8;
  }
  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  // ---- AMQP encodings (constructor + value), smallest encoding chosen ----
  null(): void {
    this.u8(0x40);
  }
  boolean(v: boolean): void {
    this.u8(v ? 0x41 : 0x42);
  }

  uint(v: number): void {
    if (v === 0) this.u8(0x43);
    else if (v < 256) {
      this.ensure(2);
      this.buf[this.pos] = 0x52;
      this.buf[this.pos + 1] = v;
      this.pos += 2;
    } else {
      this.u8(0x70);
      this.u32(v);
    }
  }

  ulong(v: bigint | number): void {
    if (typeof v === 'number') {
      if (!Number.isSafeInteger(v) || v < 0) throw new EncodeError(`ulong out of range: ${v}`);
      if (v === 0) this.u8(0x44);
      else if (v < 256) {
        this.u8(0x53);
        this.u8(v);
      } else {
        this.u8(0x80);
        this.i64n(v);
      }
      return;
    }
    if (v < 0n || v > MAX_ULONG) throw new EncodeError(`ulong out of range: ${v}`);
    if (v === 0n) this.u8(0x44);
    else if (v < 256n) {
      this.u8(0x53);
      this.u8(Number(v));
    } else {
      this.u8(0x80);
      this.u64(v);
    }
  }

  int(v: number): void {
    if (v >= -128 && v <= 127) {
      this.u8(0x54);
      this.i8(v);
    } else {
      this.u8(0x71);
      this.i32(v);
    }
  }

  long(v: bigint | number): void {
    if (typeof v === 'number') {
      if (!Number.isSafeInteger(v)) throw new EncodeError(`long out of safe range: ${v}; use a bigint`);
      if (v >= -128 && v <= 127) {
        this.u8(0x55);
        this.i8(v);
      } else {
        this.u8(0x81);
        this.i64n(v);
      }
      return;
    }
    if (v < MIN_LONG || v > MAX_LONG) throw new EncodeError(`long out of range: ${v}`);
    if (v >= -128n && v <= 127n) {
      this.u8(0x55);
      this.i8(Number(v));
    } else {
      this.u8(0x81);
      this.ensure(8);
      this.buf.writeBigInt64BE(v, this.pos);
      this.pos += 8;
    }
  }

  double(v: number): void {
    this.u8(0x82);
    this.f64(v);
  }

  timestamp(v: Date | number | bigint): void {
    this.u8(0x83);
    if (typeof v === 'bigint') {
      this.ensure(8);
      this.buf.writeBigInt64BE(v, this.pos);
      this.pos += 8;
    } else {
      const ms = typeof v === 'number' ? v : v.getTime();
      if (!Number.isSafeInteger(ms)) throw new EncodeError(`invalid timestamp: ${String(v)}`);
      this.i64n(ms);
    }
  }

  /** str8/str32 (§1.6.20). Short strings are written in place: 85 UTF-16 units never exceed 255 UTF-8 bytes. */
  string(s: string): void {
    this.text(s, 0xa1, 0xb1, 'utf8');
  }

  /** sym8/sym32 (§1.6.21): ASCII. */
  symbol(s: string): void {
    this.text(s, 0xa3, 0xb3, 'latin1');
  }

  private text(s: string, code8: number, code32: number, encoding: 'utf8' | 'latin1'): void {
    if (s.length <= 85) {
      this.ensure(2 + s.length * 3);
      const n = this.buf.write(s, this.pos + 2, encoding);
      if (n <= 255) {
        this.buf[this.pos] = code8;
        this.buf[this.pos + 1] = n;
        this.pos += 2 + n;
        return;
      }
    }
    const n = Buffer.byteLength(s, encoding);
    if (n <= 255) {
      this.ensure(2 + n);
      this.buf[this.pos] = code8;
      this.buf[this.pos + 1] = n;
      this.pos += 2;
    } else {
      this.ensure(5 + n);
      this.buf[this.pos] = code32;
      this.buf.writeUInt32BE(n, this.pos + 1);
      this.pos += 5;
    }
    this.pos += this.buf.write(s, this.pos, n, encoding);
  }

  /** vbin8/vbin32 (§1.6.22). */
  binary(b: Uint8Array): void {
    if (b.length <= 255) {
      this.ensure(2 + b.length);
      this.buf[this.pos++] = 0xa0;
      this.buf[this.pos++] = b.length;
    } else {
      this.ensure(5 + b.length);
      this.buf[this.pos++] = 0xb0;
      this.buf.writeUInt32BE(b.length, this.pos);
      this.pos += 4;
    }
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  /** The descriptor of a described type (§1.2): ulong codes or symbolic names. */
  descriptor(d: unknown): void {
    this.u8(0x00);
    if (typeof d === 'number' || typeof d === 'bigint') this.ulong(d);
    else if (typeof d === 'string') this.symbol(d);
    else this.value(d);
  }

  // ---- compounds (§1.6.22-24): 1-byte size and count first, widened if needed ----
  /** Starts a list or map; returns the mark to pass to `endCompound`. */
  beginCompound(code8: 0xc0 | 0xc1 | 0xe0): number {
    this.ensure(3);
    const mark = this.pos;
    this.buf[mark] = code8;
    this.pos += 3;
    return mark;
  }

  endCompound(mark: number, count: number): void {
    const content = this.pos - mark - 3;
    if (content + 1 <= 255 && count <= 255) {
      this.buf[mark + 1] = content + 1;
      this.buf[mark + 2] = count;
      return;
    }
    this.ensure(6);
    this.buf.copyWithin(mark + 9, mark + 3, this.pos);
    this.buf[mark] += 0x10; // c0→d0, c1→d1, e0→f0: the 4-byte-size twin
    this.buf.writeUInt32BE(content + 4, mark + 1);
    this.buf.writeUInt32BE(count, mark + 5);
    this.pos += 6;
  }

  list(items: readonly unknown[]): void {
    if (items.length === 0) {
      this.u8(0x45);
      return;
    }
    const mark = this.beginCompound(0xc0);
    for (let i = 0; i < items.length; i++) this.value(items[i]);
    this.endCompound(mark, items.length);
  }

  /** A map; plain-object keys are written as strings, or as symbols when `symbolKeys` (annotations, fields). */
  map(m: Map<unknown, unknown> | Record<string, unknown>, symbolKeys = false): void {
    const mark = this.beginCompound(0xc1);
    let count = 0;
    if (m instanceof Map) {
      for (const [k, v] of m) {
        if (symbolKeys && typeof k === 'string') this.symbol(k);
        else this.value(k);
        this.value(v);
        count += 2;
      }
    } else {
      const keys = Object.keys(m);
      for (let i = 0; i < keys.length; i++) {
        if (symbolKeys) this.symbol(keys[i]);
        else this.string(keys[i]);
        this.value(m[keys[i]]);
      }
      count = keys.length * 2;
    }
    this.endCompound(mark, count);
  }

  /** An array (§1.6.24): one constructor, then every element without one. */
  array(element: TypeName | { descriptor: unknown; type: TypeName }, items: readonly unknown[]): void {
    const described = typeof element === 'object';
    const type = described ? element.type : element;
    if (type === 'null') throw new EncodeError('an array of null has no element width; use a list');
    const mark = this.beginCompound(0xe0);
    if (described) this.descriptor(element.descriptor);
    this.u8(ARRAY_ELEMENT_CODE[type]);
    for (let i = 0; i < items.length; i++) {
      const item = described && items[i] instanceof Described ? (items[i] as Described).value : items[i];
      this.element(type, item);
    }
    this.endCompound(mark, items.length);
  }

  /** One array element of `type` in the fixed width of ARRAY_ELEMENT_CODE, without constructor. */
  private element(type: Exclude<TypeName, 'null'>, v: unknown): void {
    switch (type) {
      case 'boolean':
        this.u8(v ? 1 : 0);
        return;
      case 'ubyte':
        this.u8(checkInt(v, 0, 255, type));
        return;
      case 'ushort':
        this.u16(checkInt(v, 0, 65535, type));
        return;
      case 'uint':
        this.u32(checkInt(v, 0, 4294967295, type));
        return;
      case 'byte':
        this.i8(checkInt(v, -128, 127, type));
        return;
      case 'short':
        this.i16(checkInt(v, -32768, 32767, type));
        return;
      case 'int':
        this.i32(checkInt(v, -2147483648, 2147483647, type));
        return;
      case 'ulong': {
        const big = toBig(v);
        if (big < 0n || big > MAX_ULONG) throw new EncodeError(`ulong out of range: ${big}`);
        this.u64(big);
        return;
      }
      case 'long':
      case 'timestamp': {
        const big = type === 'timestamp' && v instanceof Date ? BigInt(v.getTime()) : toBig(v);
        if (big < MIN_LONG || big > MAX_LONG) throw new EncodeError(`${type} out of range: ${big}`);
        this.ensure(8);
        this.buf.writeBigInt64BE(big, this.pos);
        this.pos += 8;
        return;
      }
      case 'float':
        this.f32(Number(v));
        return;
      case 'double':
        this.f64(Number(v));
        return;
      case 'decimal32':
      case 'decimal64':
      case 'decimal128':
      case 'uuid':
        if (!(v instanceof Decimal || v instanceof Uuid)) throw new EncodeError(`${type} element must be a ${type}`);
        this.bytes(v.bytes);
        return;
      case 'char':
        this.u32(v instanceof Char ? v.codePoint : String(v).codePointAt(0)!);
        return;
      case 'binary': {
        const b = v as Uint8Array;
        this.u32(b.length);
        this.bytes(b);
        return;
      }
      case 'string':
      case 'symbol': {
        const s = v instanceof AmqpSymbol ? v.value : String(v);
        const n = Buffer.byteLength(s, type === 'string' ? 'utf8' : 'latin1');
        this.u32(n);
        this.ensure(n);
        this.pos += this.buf.write(s, this.pos, n, type === 'string' ? 'utf8' : 'latin1');
        return;
      }
      case 'list':
      case 'map':
      case 'array': {
        // Written in the full form, then the constructor byte is dropped so the element is bare.
        const at = this.pos;
        this.compound32(type, v);
        this.buf.copyWithin(at, at + 1, this.pos);
        this.pos -= 1;
        return;
      }
    }
  }

  /** list32/map32/array32 with constructor, as arrays require one width for every element. */
  private compound32(type: 'list' | 'map' | 'array', v: unknown): void {
    const mark = this.pos;
    this.ensure(9);
    this.buf[mark] = type === 'list' ? 0xd0 : type === 'map' ? 0xd1 : 0xf0;
    this.pos += 9;
    let count: number;
    if (type === 'list') {
      const a = v as unknown[];
      for (const x of a) this.value(x);
      count = a.length;
    } else if (type === 'map') {
      count = this.mapBody(v as Map<unknown, unknown> | Record<string, unknown>);
    } else {
      const t = v as Typed;
      if (!(t instanceof Typed) || t.type !== 'array' || !t.element) throw new EncodeError('array element of an array must be types.array(...)');
      const inner = t.value as unknown[];
      const el = t.element;
      if (typeof el === 'object') this.descriptor(el.descriptor);
      const elType = typeof el === 'object' ? el.type : el;
      if (elType === 'null') throw new EncodeError('an array of null has no element width');
      this.u8(ARRAY_ELEMENT_CODE[elType]);
      for (const x of inner) this.element(elType, x instanceof Described ? x.value : x);
      count = inner.length;
    }
    this.buf.writeUInt32BE(this.pos - mark - 5, mark + 1);
    this.buf.writeUInt32BE(count, mark + 5);
  }

  private mapBody(m: Map<unknown, unknown> | Record<string, unknown>): number {
    if (m instanceof Map) {
      for (const [k, v] of m) {
        this.value(k);
        this.value(v);
      }
      return m.size * 2;
    }
    const keys = Object.keys(m);
    for (const k of keys) {
      this.string(k);
      this.value(m[k]);
    }
    return keys.length * 2;
  }

  /** Any JavaScript value, with the type inferred as documented in types.ts. */
  value(v: unknown): void {
    switch (typeof v) {
      case 'string':
        this.string(v);
        return;
      case 'number':
        if (Number.isInteger(v)) {
          if (v >= -2147483648 && v <= 2147483647) this.int(v);
          else if (Number.isSafeInteger(v)) this.long(v);
          else this.double(v);
        } else this.double(v);
        return;
      case 'boolean':
        this.boolean(v);
        return;
      case 'bigint':
        if (v >= MIN_LONG && v <= MAX_LONG) this.long(v);
        else this.ulong(v);
        return;
      case 'undefined':
        this.null();
        return;
      case 'object':
        if (v === null) this.null();
        else if (v instanceof Uint8Array) this.binary(v);
        else if (Array.isArray(v)) this.list(v);
        else if (v instanceof AmqpSymbol) this.symbol(v.value);
        else if (v instanceof Typed) this.typed(v);
        else if (v instanceof Described) {
          this.descriptor(v.descriptor);
          this.value(v.value);
        } else if (v instanceof Date) this.timestamp(v);
        else if (v instanceof Uuid) {
          this.u8(0x98);
          this.bytes(v.bytes);
        } else if (v instanceof Decimal) {
          this.u8(v.width === 32 ? 0x74 : v.width === 64 ? 0x84 : 0x94);
          this.bytes(v.bytes);
        } else if (v instanceof Char) {
          this.u8(0x73);
          this.u32(v.codePoint);
        } else this.map(v as Map<unknown, unknown> | Record<string, unknown>);
        return;
      default:
        throw new EncodeError(`cannot encode a ${typeof v} as AMQP`);
    }
  }

  /** A value of an explicit type (see `types` helpers). */
  typed(t: Typed): void {
    const v = t.value;
    switch (t.type) {
      case 'null':
        this.null();
        return;
      case 'boolean':
        this.boolean(Boolean(v));
        return;
      case 'ubyte':
        this.u8(0x50);
        this.u8(checkInt(v, 0, 255, 'ubyte'));
        return;
      case 'ushort':
        this.u8(0x60);
        this.u16(checkInt(v, 0, 65535, 'ushort'));
        return;
      case 'uint':
        this.uint(checkInt(v, 0, 4294967295, 'uint'));
        return;
      case 'ulong':
        this.ulong(v as bigint | number);
        return;
      case 'byte':
        this.u8(0x51);
        this.i8(checkInt(v, -128, 127, 'byte'));
        return;
      case 'short':
        this.u8(0x61);
        this.i16(checkInt(v, -32768, 32767, 'short'));
        return;
      case 'int':
        this.int(checkInt(v, -2147483648, 2147483647, 'int'));
        return;
      case 'long':
        this.long(v as bigint | number);
        return;
      case 'float':
        this.u8(0x72);
        this.f32(Number(v));
        return;
      case 'double':
        this.double(Number(v));
        return;
      case 'timestamp':
        this.timestamp(v as Date | number | bigint);
        return;
      case 'binary':
        this.binary(v as Uint8Array);
        return;
      case 'string':
        this.string(String(v));
        return;
      case 'symbol':
        this.symbol(v instanceof AmqpSymbol ? v.value : String(v));
        return;
      case 'list':
        this.list(v as unknown[]);
        return;
      case 'map':
        this.map(v as Record<string, unknown>);
        return;
      case 'array':
        this.array(t.element ?? 'null', v as unknown[]);
        return;
      default:
        this.value(v); // decimal, char, uuid: their classes carry the type
    }
  }
}

function checkInt(v: unknown, min: number, max: number, type: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new EncodeError(`${type} out of range: ${String(v)}`);
  }
  return v;
}

function toBig(v: unknown): bigint {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number' && Number.isSafeInteger(v)) return BigInt(v);
  throw new EncodeError(`not a 64-bit integer: ${String(v)}`);
}
