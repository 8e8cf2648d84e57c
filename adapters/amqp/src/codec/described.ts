// Composite types (AMQP 1.0 §1.4): a described list whose positions are
// named fields. Each composite is declared as a data table — field name,
// type, mandatory, default, multiple — and this module turns such tables into
// encoders and decoders. AMQP field names (kebab-case) become camelCase
// JavaScript keys here, at the codec edge, and nowhere else.
import { DecodeError, EncodeError } from '../errors.js';
import type { Writer } from './encoder.js';
import { AmqpSymbol, Described, Uuid } from './types.js';

/**
 * Field types: AMQP primitives; 'fields' (a map with symbol keys, §2.8.24);
 * 'message-id' (§3.2.11-14); '*' (any value, composites converted by
 * descriptor); or the name of another composite ('error', 'source', ...).
 */
type FieldType = 'boolean' | 'ubyte' | 'ushort' | 'uint' | 'ulong' | 'symbol' | 'string' | 'binary' | 'timestamp' | 'fields' | 'map' | 'message-id' | '*' | 'delivery-state' | 'error' | 'source' | 'target';

export const MANDATORY = 'mandatory';
export const MULTIPLE = 'multiple';
export const OPTIONAL = undefined;
type FieldRow = readonly [name: string, type: FieldType, flag?: typeof MANDATORY | typeof MULTIPLE, defaultValue?: unknown];

interface Field {
  name: string;
  key: string;
  type: FieldType;
  mandatory: boolean;
  multiple: boolean;
  default: unknown;
}

/** A composite's table; `T` is the JavaScript shape its fields decode to and encode from. */
export interface Composite<T extends object = object> {
  name: string;
  /** Low 32 bits of the numeric descriptor (domain 0x00000000 = AMQP). */
  code: number;
  symbol: string;
  fields: Field[];
  /** Delivery states carry their name as `type` in JavaScript, so one field can hold any of them. */
  tagged: boolean;
  /** Never set: carries `T` so a table and the objects it describes stay tied together in the types. */
  readonly shape?: T;
}

const byCode = new Map<number, Composite>();
const byName = new Map<string, Composite>();
const bySymbol = new Map<string, Composite>();

const camel = (name: string): string => name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

/** Declares a composite from its table; `symbol` is the symbolic descriptor, e.g. amqp:open:list. */
export function define<T extends object>(name: string, code: number, symbol: string, rows: readonly FieldRow[], tagged = false): Composite<T> {
  const fields = rows.map(([fieldName, type, flag, def]) => ({
    name: fieldName,
    key: camel(fieldName),
    type,
    mandatory: flag === MANDATORY,
    multiple: flag === MULTIPLE,
    default: def,
  }));
  const c: Composite<T> = { name, code, symbol, fields, tagged };
  byCode.set(code, c);
  byName.set(name, c);
  bySymbol.set(symbol, c);
  return c;
}

/** The composite a descriptor (ulong or symbol) names, if we know it. */
export function compositeOf(descriptor: unknown): Composite | undefined {
  if (typeof descriptor === 'bigint') return descriptor < 0x100000000n ? byCode.get(Number(descriptor)) : undefined;
  if (descriptor instanceof AmqpSymbol) return bySymbol.get(descriptor.value);
  return undefined;
}

// ---- encoding ----

export function encodeComposite<T extends object>(w: Writer, c: Composite<T>, obj: T): void {
  const o = obj as Record<string, unknown>; // read field by field, as the table names them
  const fields = c.fields;
  w.ensure(3);
  w.buf[w.pos] = 0x00;
  w.buf[w.pos + 1] = 0x53;
  w.buf[w.pos + 2] = c.code; // smallulong descriptor
  w.pos += 3;
  // AMQP 1.0 §1.4: trailing null fields are omitted from the list.
  let last = -1;
  for (let i = 0; i < fields.length; i++) {
    const v = o[fields[i].key];
    if (v !== undefined && v !== null && !(fields[i].multiple && Array.isArray(v) && v.length === 0)) last = i;
    else if (fields[i].mandatory) throw new EncodeError(`${c.name}.${fields[i].key} is mandatory`);
  }
  if (last < 0) {
    w.u8(0x45);
    return;
  }
  const mark = w.beginCompound(0xc0);
  for (let i = 0; i <= last; i++) encodeField(w, fields[i], o[fields[i].key]);
  w.endCompound(mark, last + 1);
}

function encodeField(w: Writer, f: Field, v: unknown): void {
  if (v === undefined || v === null || (f.multiple && Array.isArray(v) && v.length === 0)) {
    w.null();
    return;
  }
  if (f.multiple && Array.isArray(v)) {
    // §1.4: a multiple field holds one value or an array of them.
    if (v.length === 1) {
      encodeField(w, { ...f, multiple: false }, v[0]);
      return;
    }
    if (f.type !== 'symbol') throw new EncodeError(`${f.key}: multiple ${f.type} not supported`);
    w.array(
      'symbol',
      v.map((s) => (s instanceof AmqpSymbol ? s.value : String(s))),
    );
    return;
  }
  switch (f.type) {
    case 'boolean':
      w.boolean(Boolean(v));
      return;
    case 'ubyte':
      w.u8(0x50);
      w.u8(v as number);
      return;
    case 'ushort':
      w.u8(0x60);
      w.u16(v as number);
      return;
    case 'uint':
      w.uint(v as number);
      return;
    case 'ulong':
      w.ulong(v as bigint | number);
      return;
    case 'symbol':
      // eslint-disable-next-line @typescript-eslint/no-base-to-string -- a symbol or string field holds a string; String() keeps a caller's number readable
      w.symbol(v instanceof AmqpSymbol ? v.value : String(v));
      return;
    case 'string':
      // eslint-disable-next-line @typescript-eslint/no-base-to-string -- as above
      w.string(String(v));
      return;
    case 'binary':
      w.binary(v as Uint8Array);
      return;
    case 'timestamp':
      w.timestamp(v as Date);
      return;
    case 'fields':
      w.map(v as Record<string, unknown>, true);
      return;
    case 'map':
      w.map(v as Record<string, unknown>);
      return;
    case 'message-id':
      // §3.2.11-14: integers are message-id-ulong, strings, binaries and uuids are themselves.
      if (typeof v === 'number' || typeof v === 'bigint') w.ulong(v);
      else w.value(v);
      return;
    case '*':
    case 'delivery-state': {
      const tag = (v as { type?: unknown }).type;
      const c = typeof tag === 'string' && v.constructor === Object ? byName.get(tag) : undefined;
      if (c) encodeComposite(w, c, v);
      else w.value(v);
      return;
    }
    default: {
      if (v instanceof Described) {
        w.value(v);
        return;
      }
      encodeComposite(w, byName.get(f.type)!, v);
    }
  }
}

// ---- decoding ----

/**
 * Turns the (already decoded) list of a composite into its JavaScript object.
 * Every field is checked against its row (type, mandatory, default), which is
 * what makes the result a `T`.
 */
export function fromList<T extends object>(c: Composite<T>, items: unknown): T {
  if (!Array.isArray(items)) throw new DecodeError(`${c.name}: described value is not a list`);
  const fields = c.fields;
  const o: Record<string, unknown> = c.tagged ? { type: c.name } : {};
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i];
    const raw: unknown = i < items.length ? items[i] : null;
    if (raw === null || raw === undefined) {
      if (f.mandatory) throw new DecodeError(`${c.name}.${f.name} is mandatory`);
      if (f.default !== undefined) o[f.key] = f.default;
    } else {
      o[f.key] = f.multiple ? (Array.isArray(raw) ? raw : [raw]).map((x) => convert(c, f, x)) : convert(c, f, raw);
    }
  }
  return o as T;
}

/** Checks one decoded field value against its declared type, converting at the edge. */
function convert(c: Composite, f: Field, v: unknown): unknown {
  const bad = (): never => {
    throw new DecodeError(`${c.name}.${f.name}: expected ${f.type}`);
  };
  switch (f.type) {
    case 'boolean':
      return typeof v === 'boolean' ? v : bad();
    case 'ubyte':
    case 'ushort':
    case 'uint':
      return typeof v === 'number' && v >= 0 ? v : bad();
    case 'ulong':
      return typeof v === 'bigint' ? v : bad();
    case 'symbol':
      return v instanceof AmqpSymbol ? v.value : typeof v === 'string' ? v : bad();
    case 'string':
      return typeof v === 'string' ? v : bad();
    case 'binary':
      return Buffer.isBuffer(v) ? v : bad();
    case 'timestamp':
      return v instanceof Date ? v : bad();
    case 'fields':
    case 'map':
      return typeof v === 'object' ? v : bad();
    case 'message-id':
      return v instanceof Uuid || typeof v === 'string' || typeof v === 'bigint' || Buffer.isBuffer(v) ? v : bad();
    case '*':
    case 'delivery-state':
      return fromDescribed(v);
    default: {
      const want = byName.get(f.type)!;
      if (!(v instanceof Described) || compositeOf(v.descriptor) !== want) bad();
      return fromList(want, (v as Described).value);
    }
  }
}

/** A Described with a known descriptor becomes its composite's object; anything else is returned as is. */
function fromDescribed(v: unknown): unknown {
  if (!(v instanceof Described)) return v;
  const c = compositeOf(v.descriptor);
  return c ? fromList(c, v.value) : v;
}
