// AMQP 1.0 decoder (part 1, §1.2 and §1.6). Every read is bounds-checked
// against the slice being decoded, so truncated or hostile input raises a
// DecodeError instead of reading past the end; declared sizes and counts are
// checked against the bytes actually present before anything is allocated,
// and nesting is limited so input cannot exhaust the stack.
import { DecodeError } from '../errors.js';
import { AmqpSymbol, Char, Decimal, Described, TYPE_CODES, Typed, Uuid } from './types.js';

const MAX_DEPTH = 64;
/** Date covers ±8.64e15 ms (ECMA-262 §21.4.1.1); timestamps beyond it stay exact as Typed bigints. */
const MAX_DATE_MS = 8.64e15;
const TWO_32 = 4294967296;

export class Reader {
  buf: Buffer;
  pos: number;
  end: number;
  private depth = 0;

  constructor(buf: Buffer, start = 0, end = buf.length) {
    this.buf = buf;
    this.pos = start;
    this.end = end;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  need(n: number): void {
    if (n > this.end - this.pos) {
      throw new DecodeError(`truncated: need ${n} bytes at offset ${this.pos}, have ${this.end - this.pos}`);
    }
  }

  u8(): number {
    this.need(1);
    return this.buf[this.pos++];
  }
  u16(): number {
    this.need(2);
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  /** A slice of the input (no copy): it shares memory with the frame it came from. */
  slice(n: number): Buffer {
    this.need(n);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  /** A copy, for values that outlive the frame (uuid, decimal). */
  copy(n: number): Buffer {
    this.need(n);
    const b = Buffer.from(this.buf.subarray(this.pos, this.pos + n));
    this.pos += n;
    return b;
  }

  /** One value: constructor, then value. */
  read(): unknown {
    const code = this.u8();
    return code === 0x00 ? this.described() : this.valueOf(code);
  }

  /** The value that follows constructor `code`. */
  valueOf(code: number): unknown {
    const reader = READERS[code];
    if (reader === undefined) throw new DecodeError(`unknown constructor 0x${code.toString(16).padStart(2, '0')}`);
    return reader(this);
  }

  /** A described value (§1.2): descriptor, then value, after the 0x00 constructor. */
  described(): Described {
    this.enter();
    const descriptor = this.read();
    const value = this.read();
    this.depth--;
    return new Described(descriptor, value);
  }

  enter(): void {
    if (++this.depth > MAX_DEPTH) throw new DecodeError(`nesting deeper than ${MAX_DEPTH}`);
  }

  /**
   * Size and count of a compound or array of `width` (1 or 4). Returns the
   * end offset; `count` is bounded by the size so no input can make us
   * allocate more than it is long.
   */
  header(width: number): { end: number; count: number } {
    const size = width === 1 ? this.u8() : this.u32();
    this.need(size);
    const end = this.pos + size;
    if (size < width) throw new DecodeError(`compound size ${size} smaller than its count field`);
    const count = width === 1 ? this.u8() : this.u32();
    return { end, count };
  }

  list(width: number): unknown[] {
    const { end, count } = this.header(width);
    if (count > end - this.pos) throw new DecodeError(`list count ${count} exceeds its ${end - this.pos} bytes`);
    this.enter();
    const saved = this.end;
    this.end = end;
    const items = new Array<unknown>(count);
    for (let i = 0; i < count; i++) items[i] = this.read();
    this.end = saved;
    this.pos = end;
    this.depth--;
    return items;
  }

  /**
   * A map. With only string or symbol keys it becomes a plain object (symbol
   * keys as their names); any other key type makes it a Map, so nothing is lost.
   */
  map(width: number): Record<string, unknown> | Map<unknown, unknown> {
    const { end, count } = this.header(width);
    if (count % 2 !== 0) throw new DecodeError(`map with odd count ${count}`);
    if (count > end - this.pos) throw new DecodeError(`map count ${count} exceeds its ${end - this.pos} bytes`);
    this.enter();
    const saved = this.end;
    this.end = end;
    let obj: Record<string, unknown> | null = {};
    let map: Map<unknown, unknown> | null = null;
    for (let i = 0; i < count; i += 2) {
      let key = this.read();
      const value = this.read();
      if (obj !== null && key instanceof AmqpSymbol) key = key.value;
      if (obj !== null && typeof key === 'string') {
        if (key === '__proto__') Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
        else obj[key] = value;
      } else {
        if (map === null) {
          map = new Map(Object.entries(obj!));
          obj = null;
        }
        map.set(key, value);
      }
    }
    this.end = saved;
    this.pos = end;
    this.depth--;
    return map ?? obj!;
  }

  /** An array (§1.6.24): one constructor for all elements; described elements come back as Described. */
  array(width: number): unknown[] {
    const { end, count } = this.header(width);
    this.enter();
    const saved = this.end;
    this.end = end;
    let descriptor: unknown;
    let code = this.u8();
    const isDescribed = code === 0x00;
    if (isDescribed) {
      descriptor = this.read();
      code = this.u8();
    }
    const type = TYPE_CODES[code];
    if (type === undefined) throw new DecodeError(`unknown array constructor 0x${code.toString(16)}`);
    // Zero-width elements occupy no bytes; bound them by the input length instead.
    const limit = type.category === 'fixed' && type.width === 0 ? this.buf.length * 8 : end - this.pos;
    if (count > limit) throw new DecodeError(`array count ${count} exceeds its ${end - this.pos} bytes`);
    const reader = READERS[code]!;
    const items = new Array<unknown>(count);
    for (let i = 0; i < count; i++) {
      const v = reader(this);
      items[i] = isDescribed ? new Described(descriptor, v) : v;
    }
    this.end = saved;
    this.pos = end;
    this.depth--;
    return items;
  }

  long(): bigint {
    this.need(8);
    const v = this.buf.readBigInt64BE(this.pos);
    this.pos += 8;
    return v;
  }
  ulong(): bigint {
    this.need(8);
    const v = this.buf.readBigUInt64BE(this.pos);
    this.pos += 8;
    return v;
  }

  timestamp(): Date | Typed {
    this.need(8);
    const hi = this.buf.readInt32BE(this.pos);
    const lo = this.buf.readUInt32BE(this.pos + 4);
    const ms = hi * TWO_32 + lo;
    if (ms >= -MAX_DATE_MS && ms <= MAX_DATE_MS) {
      this.pos += 8;
      return new Date(ms);
    }
    return new Typed('timestamp', this.long());
  }
}

type ValueReader = (r: Reader) => unknown;

// AMQP 1.0 §1.6: how to read the value after each constructor code.
const byCode: Record<number, ValueReader> = {
  0x40: () => null,
  0x56: (r) => {
    const b = r.u8();
    if (b > 1) throw new DecodeError(`invalid boolean byte ${b}`);
    return b === 1;
  },
  0x41: () => true,
  0x42: () => false,
  0x50: (r) => r.u8(),
  0x60: (r) => r.u16(),
  0x70: (r) => r.u32(),
  0x52: (r) => r.u8(),
  0x43: () => 0,
  0x80: (r) => r.ulong(),
  0x53: (r) => BigInt(r.u8()),
  0x44: () => 0n,
  0x51: (r) => {
    r.need(1);
    return r.buf.readInt8(r.pos++);
  },
  0x61: (r) => {
    r.need(2);
    const v = r.buf.readInt16BE(r.pos);
    r.pos += 2;
    return v;
  },
  0x71: (r) => {
    r.need(4);
    const v = r.buf.readInt32BE(r.pos);
    r.pos += 4;
    return v;
  },
  0x54: (r) => {
    r.need(1);
    return r.buf.readInt8(r.pos++);
  },
  0x81: (r) => r.long(),
  0x55: (r) => {
    r.need(1);
    return BigInt(r.buf.readInt8(r.pos++));
  },
  0x72: (r) => {
    r.need(4);
    const v = r.buf.readFloatBE(r.pos);
    r.pos += 4;
    return v;
  },
  0x82: (r) => {
    r.need(8);
    const v = r.buf.readDoubleBE(r.pos);
    r.pos += 8;
    return v;
  },
  0x74: (r) => new Decimal(32, r.copy(4)),
  0x84: (r) => new Decimal(64, r.copy(8)),
  0x94: (r) => new Decimal(128, r.copy(16)),
  0x73: (r) => {
    const cp = r.u32();
    if (cp > 0x10ffff) throw new DecodeError(`invalid char U+${cp.toString(16)}`);
    return new Char(cp);
  },
  0x83: (r) => r.timestamp(),
  0x98: (r) => new Uuid(r.copy(16)),
  0xa0: (r) => r.slice(r.u8()),
  0xb0: (r) => r.slice(r.u32()),
  0xa1: (r) => {
    const n = r.u8();
    r.need(n);
    const s = r.buf.toString('utf8', r.pos, r.pos + n);
    r.pos += n;
    return s;
  },
  0xb1: (r) => {
    const n = r.u32();
    r.need(n);
    const s = r.buf.toString('utf8', r.pos, r.pos + n);
    r.pos += n;
    return s;
  },
  0xa3: (r) => {
    const n = r.u8();
    r.need(n);
    const s = r.buf.toString('latin1', r.pos, r.pos + n);
    r.pos += n;
    return new AmqpSymbol(s);
  },
  0xb3: (r) => {
    const n = r.u32();
    r.need(n);
    const s = r.buf.toString('latin1', r.pos, r.pos + n);
    r.pos += n;
    return new AmqpSymbol(s);
  },
  0x45: () => [],
  0xc0: (r) => r.list(1),
  0xd0: (r) => r.list(4),
  0xc1: (r) => r.map(1),
  0xd1: (r) => r.map(4),
  0xe0: (r) => r.array(1),
  0xf0: (r) => r.array(4),
};

/** Value readers indexed by constructor code, for every code in TYPE_CODES. */
const READERS: Array<ValueReader | undefined> = TYPE_CODES.map((t) => (t ? byCode[t.code] : undefined));

/** Decodes one value from the start of `buf`. */
export function decode(buf: Buffer): unknown {
  return new Reader(buf).read();
}
