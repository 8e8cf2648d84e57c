// The AMQP 1.0 type system (part 1, §1.6). JavaScript values map to AMQP types
// as follows, both ways:
//   null/undefined ↔ null, boolean ↔ boolean, number ↔ the 8..32-bit integers,
//   float and double, bigint ↔ long/ulong (64-bit is always a BigInt on decode),
//   string ↔ string, Buffer ↔ binary, Date ↔ timestamp, Array ↔ list,
//   object/Map ↔ map. Types JavaScript has no value for are small classes
//   (AmqpSymbol, Uuid, Decimal, Char, Described); any exact width is chosen
//   with a Typed wrapper built by the helpers at the end of this file.

/** Primitive type names of AMQP 1.0 §1.6. */
export type TypeName =
  | 'null'
  | 'boolean'
  | 'ubyte'
  | 'ushort'
  | 'uint'
  | 'ulong'
  | 'byte'
  | 'short'
  | 'int'
  | 'long'
  | 'float'
  | 'double'
  | 'decimal32'
  | 'decimal64'
  | 'decimal128'
  | 'char'
  | 'timestamp'
  | 'uuid'
  | 'binary'
  | 'string'
  | 'symbol'
  | 'list'
  | 'map'
  | 'array';

type Category = 'fixed' | 'variable' | 'compound' | 'array';

interface TypeCode {
  code: number;
  name: TypeName;
  category: Category;
  /** Fixed: bytes of the value. Variable/compound/array: bytes of the size (and count) field. */
  width: number;
}

// AMQP 1.0 §1.6: every encoding, keyed by its constructor code. The width
// follows from the code's high nibble (§1.2.3, "subcategory").
const encodings: Array<[number, TypeName]> = [
  [0x40, 'null'],
  [0x56, 'boolean'],
  [0x41, 'boolean'],
  [0x42, 'boolean'],
  [0x50, 'ubyte'],
  [0x60, 'ushort'],
  [0x70, 'uint'],
  [0x52, 'uint'],
  [0x43, 'uint'],
  [0x80, 'ulong'],
  [0x53, 'ulong'],
  [0x44, 'ulong'],
  [0x51, 'byte'],
  [0x61, 'short'],
  [0x71, 'int'],
  [0x54, 'int'],
  [0x81, 'long'],
  [0x55, 'long'],
  [0x72, 'float'],
  [0x82, 'double'],
  [0x74, 'decimal32'],
  [0x84, 'decimal64'],
  [0x94, 'decimal128'],
  [0x73, 'char'],
  [0x83, 'timestamp'],
  [0x98, 'uuid'],
  [0xa0, 'binary'],
  [0xb0, 'binary'],
  [0xa1, 'string'],
  [0xb1, 'string'],
  [0xa3, 'symbol'],
  [0xb3, 'symbol'],
  [0x45, 'list'],
  [0xc0, 'list'],
  [0xd0, 'list'],
  [0xc1, 'map'],
  [0xd1, 'map'],
  [0xe0, 'array'],
  [0xf0, 'array'],
];

function describe(code: number, name: TypeName): TypeCode {
  switch (code >> 4) {
    case 0x4:
      return { code, name, category: 'fixed', width: 0 };
    case 0x5:
      return { code, name, category: 'fixed', width: 1 };
    case 0x6:
      return { code, name, category: 'fixed', width: 2 };
    case 0x7:
      return { code, name, category: 'fixed', width: 4 };
    case 0x8:
      return { code, name, category: 'fixed', width: 8 };
    case 0x9:
      return { code, name, category: 'fixed', width: 16 };
    case 0xa:
      return { code, name, category: 'variable', width: 1 };
    case 0xb:
      return { code, name, category: 'variable', width: 4 };
    case 0xc:
      return { code, name, category: 'compound', width: 1 };
    case 0xd:
      return { code, name, category: 'compound', width: 4 };
    case 0xe:
      return { code, name, category: 'array', width: 1 };
    default:
      return { code, name, category: 'array', width: 4 };
  }
}

/** Every constructor code of §1.6 (index = code); undefined for codes that are not types. */
export const TYPE_CODES: ReadonlyArray<TypeCode | undefined> = (() => {
  const table: Array<TypeCode | undefined> = new Array<TypeCode | undefined>(256).fill(undefined);
  for (const [code, name] of encodings) table[code] = describe(code, name);
  return table;
})();

/** The constructor code we write for a value of each type inside an array (one width for all elements). */
export const ARRAY_ELEMENT_CODE: Record<Exclude<TypeName, 'null'>, number> = {
  boolean: 0x56,
  ubyte: 0x50,
  ushort: 0x60,
  uint: 0x70,
  ulong: 0x80,
  byte: 0x51,
  short: 0x61,
  int: 0x71,
  long: 0x81,
  float: 0x72,
  double: 0x82,
  decimal32: 0x74,
  decimal64: 0x84,
  decimal128: 0x94,
  char: 0x73,
  timestamp: 0x83,
  uuid: 0x98,
  binary: 0xb0,
  string: 0xb1,
  symbol: 0xb3,
  list: 0xd0,
  map: 0xd1,
  array: 0xf0,
};

/** AMQP symbol (§1.6.21): an ASCII name, distinct from a string on the wire. */
export class AmqpSymbol {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
  toJSON(): string {
    return this.value;
  }
}

/** AMQP uuid (§1.6.19): 16 bytes, RFC 4122 order. */
export class Uuid {
  readonly bytes: Buffer;
  constructor(bytes: Uint8Array) {
    if (bytes.length !== 16) throw new RangeError('a uuid is 16 bytes');
    this.bytes = Buffer.from(bytes);
  }
  static parse(text: string): Uuid {
    const hex = text.replace(/-/g, '');
    if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new RangeError(`not a uuid: ${text}`);
    return new Uuid(Buffer.from(hex, 'hex'));
  }
  toString(): string {
    const h = this.bytes.toString('hex');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }
  toJSON(): string {
    return this.toString();
  }
}

/**
 * AMQP decimal32/64/128 (§1.6.15-17, IEEE 754-2008 decimal, BID or DPD as the
 * peer chose): kept as the exact bytes, since JavaScript has no decimal type
 * and any conversion would round.
 */
export class Decimal {
  readonly bytes: Buffer;
  constructor(
    readonly width: 32 | 64 | 128,
    bytes: Uint8Array,
  ) {
    if (bytes.length !== width / 8) throw new RangeError(`decimal${width} is ${width / 8} bytes`);
    this.bytes = Buffer.from(bytes);
  }
}

/** AMQP char (§1.6.18): one Unicode code point, UTF-32. */
export class Char {
  constructor(readonly codePoint: number) {}
  toString(): string {
    return String.fromCodePoint(this.codePoint);
  }
}

/** A described type (§1.2): a descriptor (ulong or symbol) and a value. */
export class Described {
  constructor(
    readonly descriptor: unknown,
    readonly value: unknown,
  ) {}
}

/**
 * A value with an explicit AMQP type, for the widths JavaScript cannot tell
 * apart (ubyte vs int, float vs double) and for arrays. For arrays, `element`
 * is the element type name, or a descriptor+type for arrays of described values.
 */
export class Typed {
  constructor(
    readonly type: TypeName,
    readonly value: unknown,
    readonly element?: TypeName | { descriptor: unknown; type: TypeName },
  ) {}
}

// Helpers for writing exact types: types.ubyte(7), types.array('symbol', ['a']).
export const types = {
  null: (): Typed => new Typed('null', null),
  boolean: (v: boolean): Typed => new Typed('boolean', v),
  ubyte: (v: number): Typed => new Typed('ubyte', v),
  ushort: (v: number): Typed => new Typed('ushort', v),
  uint: (v: number): Typed => new Typed('uint', v),
  ulong: (v: bigint | number): Typed => new Typed('ulong', v),
  byte: (v: number): Typed => new Typed('byte', v),
  short: (v: number): Typed => new Typed('short', v),
  int: (v: number): Typed => new Typed('int', v),
  long: (v: bigint | number): Typed => new Typed('long', v),
  float: (v: number): Typed => new Typed('float', v),
  double: (v: number): Typed => new Typed('double', v),
  decimal32: (bytes: Uint8Array): Decimal => new Decimal(32, bytes),
  decimal64: (bytes: Uint8Array): Decimal => new Decimal(64, bytes),
  decimal128: (bytes: Uint8Array): Decimal => new Decimal(128, bytes),
  char: (c: string | number): Char => new Char(typeof c === 'number' ? c : c.codePointAt(0)!),
  timestamp: (v: Date | number | bigint): Typed => new Typed('timestamp', v),
  uuid: (v: string | Uint8Array): Uuid => (typeof v === 'string' ? Uuid.parse(v) : new Uuid(v)),
  binary: (v: Uint8Array): Typed => new Typed('binary', v),
  string: (v: string): Typed => new Typed('string', v),
  symbol: (v: string): AmqpSymbol => new AmqpSymbol(v),
  list: (v: unknown[]): Typed => new Typed('list', v),
  map: (v: Map<unknown, unknown> | Record<string, unknown>): Typed => new Typed('map', v),
  array: (element: TypeName | { descriptor: unknown; type: TypeName }, v: unknown[]): Typed => new Typed('array', v, element),
  described: (descriptor: unknown, value: unknown): Described => new Described(descriptor, value),
};
