// The AMQP message format (AMQP 1.0 §3.2): a sequence of described sections,
// each optional, in a fixed order, with exactly one kind of body.
import { define, encodeComposite, fromList, OPTIONAL } from './codec/described.js';
import type { Writer } from './codec/encoder.js';
import { Reader } from './codec/decoder.js';
import type { Uuid } from './codec/types.js';
import { DecodeError } from './errors.js';

/** §3.2.1 header */
export interface Header {
  durable?: boolean;
  priority?: number;
  ttl?: number;
  firstAcquirer?: boolean;
  deliveryCount?: number;
}
const HeaderType = define<Header>('header', 0x70, 'amqp:header:list', [
  ['durable', 'boolean', OPTIONAL, false],
  ['priority', 'ubyte', OPTIONAL, 4],
  ['ttl', 'uint'], // milliseconds
  ['first-acquirer', 'boolean', OPTIONAL, false],
  ['delivery-count', 'uint', OPTIONAL, 0],
]);

export type MessageId = string | number | bigint | Buffer | Uuid;

/** §3.2.4 properties */
export interface Properties {
  messageId?: MessageId;
  userId?: Buffer;
  to?: string;
  subject?: string;
  replyTo?: string;
  correlationId?: MessageId;
  contentType?: string;
  contentEncoding?: string;
  absoluteExpiryTime?: Date;
  creationTime?: Date;
  groupId?: string;
  groupSequence?: number;
  replyToGroupId?: string;
}
const PropertiesType = define<Properties>('properties', 0x73, 'amqp:properties:list', [
  ['message-id', 'message-id'],
  ['user-id', 'binary'],
  ['to', 'string'],
  ['subject', 'string'],
  ['reply-to', 'string'],
  ['correlation-id', 'message-id'],
  ['content-type', 'symbol'],
  ['content-encoding', 'symbol'],
  ['absolute-expiry-time', 'timestamp'],
  ['creation-time', 'timestamp'],
  ['group-id', 'string'],
  ['group-sequence', 'uint'],
  ['reply-to-group-id', 'string'],
]);

// The other sections are a single value under a descriptor (§3.2.2-3.2.10).
const Section = {
  header: 0x70,
  deliveryAnnotations: 0x71,
  messageAnnotations: 0x72,
  properties: 0x73,
  applicationProperties: 0x74,
  data: 0x75,
  amqpSequence: 0x76,
  amqpValue: 0x77,
  footer: 0x78,
} as const;

export type Annotations = Record<string, unknown>;

/**
 * A message. `body` is sent as one data section when it is a Buffer, as
 * amqp-value otherwise; set `bodyType` to send an array of Buffers as several
 * data sections ('data') or an array of lists as amqp-sequence sections
 * ('sequence'). Decoded messages set `bodyType` to what was received.
 */
export interface Message {
  header?: Header;
  deliveryAnnotations?: Annotations;
  messageAnnotations?: Annotations;
  properties?: Properties;
  applicationProperties?: Record<string, unknown>;
  body?: unknown;
  bodyType?: 'data' | 'sequence' | 'value';
  footer?: Annotations;
}

function section(w: Writer, code: number): void {
  w.ensure(3);
  w.buf[w.pos] = 0x00;
  w.buf[w.pos + 1] = 0x53;
  w.buf[w.pos + 2] = code;
  w.pos += 3;
}

export function encodeMessage(w: Writer, m: Message): void {
  if (m.header) encodeComposite(w, HeaderType, m.header);
  if (m.deliveryAnnotations) {
    section(w, Section.deliveryAnnotations);
    w.map(m.deliveryAnnotations, true);
  }
  if (m.messageAnnotations) {
    section(w, Section.messageAnnotations);
    w.map(m.messageAnnotations, true);
  }
  if (m.properties) encodeComposite(w, PropertiesType, m.properties);
  if (m.applicationProperties) {
    section(w, Section.applicationProperties);
    w.map(m.applicationProperties);
  }
  const body = m.body;
  if (m.bodyType === 'data' && Array.isArray(body)) {
    for (const chunk of body) {
      section(w, Section.data);
      w.binary(chunk as Uint8Array);
    }
  } else if (m.bodyType === 'sequence') {
    for (const list of body as unknown[][]) {
      section(w, Section.amqpSequence);
      w.list(list);
    }
  } else if (body instanceof Uint8Array && m.bodyType !== 'value') {
    section(w, Section.data);
    w.binary(body);
  } else {
    section(w, Section.amqpValue);
    w.value(body);
  }
  if (m.footer) {
    section(w, Section.footer);
    w.map(m.footer, true);
  }
}

export function decodeMessage(payload: Buffer): Message {
  const r = new Reader(payload);
  const m: Message = {};
  let data: Buffer[] | undefined;
  let sequence: unknown[][] | undefined;
  while (r.remaining > 0) {
    const code = sectionCode(r);
    const value = r.read();
    switch (code) {
      case Section.header:
        m.header = fromList(HeaderType, value);
        break;
      case Section.deliveryAnnotations:
        m.deliveryAnnotations = asMap(value, 'delivery-annotations');
        break;
      case Section.messageAnnotations:
        m.messageAnnotations = asMap(value, 'message-annotations');
        break;
      case Section.properties:
        m.properties = fromList(PropertiesType, value);
        break;
      case Section.applicationProperties:
        m.applicationProperties = asMap(value, 'application-properties');
        break;
      case Section.data:
        if (!Buffer.isBuffer(value)) throw new DecodeError('data section is not binary');
        (data ??= []).push(value);
        break;
      case Section.amqpSequence:
        if (!Array.isArray(value)) throw new DecodeError('amqp-sequence section is not a list');
        (sequence ??= []).push(value);
        break;
      case Section.amqpValue:
        m.body = value;
        m.bodyType = 'value';
        break;
      case Section.footer:
        m.footer = asMap(value, 'footer');
        break;
      default:
        throw new DecodeError(`unknown message section 0x${code.toString(16)}`);
    }
  }
  if (data) {
    m.body = data.length === 1 ? data[0] : data;
    m.bodyType = 'data';
  } else if (sequence) {
    m.body = sequence;
    m.bodyType = 'sequence';
  }
  return m;
}

/** Reads a section descriptor: the common smallulong form directly, others through the generic reader. */
function sectionCode(r: Reader): number {
  r.need(3);
  const b = r.buf;
  if (b[r.pos] !== 0x00) throw new DecodeError('message section is not a described type');
  if (b[r.pos + 1] === 0x53) {
    const code = b[r.pos + 2];
    r.pos += 3;
    return code;
  }
  r.pos += 1;
  const d = r.read();
  if (typeof d === 'bigint' && d < 0x100n) return Number(d);
  const names: Record<string, number> = {
    'amqp:header:list': 0x70,
    'amqp:delivery-annotations:map': 0x71,
    'amqp:message-annotations:map': 0x72,
    'amqp:properties:list': 0x73,
    'amqp:application-properties:map': 0x74,
    'amqp:data:binary': 0x75,
    'amqp:amqp-sequence:list': 0x76,
    'amqp:amqp-value:*': 0x77,
    'amqp:footer:map': 0x78,
  };
  return names[String(d)] ?? -1;
}

function asMap(v: unknown, what: string): Record<string, unknown> {
  if (v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v) || Buffer.isBuffer(v)) throw new DecodeError(`${what} is not a map`);
  return v as Record<string, unknown>;
}
