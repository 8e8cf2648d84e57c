// How a Nitrogen envelope travels as an AMQP message (docs/sinks.md, "Message mapping").
// The body is the whole envelope as UTF-8 JSON in one data section (AMQP 1.0 §3.2.6):
// every AMQP 1.0 client reads a data section as bytes, whereas an amqp-value map would
// need an AMQP-typed decoder and could not hold every JSON number exactly.
import { encodeMessage as envelopeJson, type Message as Envelope } from '../../core/message.js';
import type { FeedRecord } from '../../core/ports/store.js';
import type { Message as AmqpMessage, Writer } from '@nitrogen/amqp';

export const CONTENT_TYPE = 'application/json';

/**
 * The AMQP message for an envelope: message-id = id, subject = type, creation-time = ts,
 * absolute-expiry-time = expires (§3.2.4), application-properties from, type and to (§3.2.5),
 * header durable (§3.2.1) so that brokers keep it on disk.
 */
export function toAmqpMessage(m: Envelope, durable: boolean, annotations?: Record<string, unknown>): AmqpMessage {
  const applicationProperties: Record<string, unknown> = { from: m.from, type: m.type };
  if (m.to !== undefined) applicationProperties.to = m.to;
  const message: AmqpMessage = {
    properties: {
      messageId: m.id,
      subject: m.type,
      contentType: CONTENT_TYPE,
      creationTime: new Date(m.ts),
      ...(m.expires !== undefined ? { absoluteExpiryTime: new Date(m.expires) } : {}),
    },
    applicationProperties,
    body: Buffer.from(envelopeJson(m), 'utf8'),
  };
  if (durable) message.header = { durable: true };
  if (annotations) message.messageAnnotations = annotations;
  return message;
}

/**
 * The AMQP message of `toAmqpMessage`, from a stored record whose envelope bytes are the body as
 * they are (unparsed), encoded straight into `w`: byte for byte what `encodeMessage` writes for
 * `toAmqpMessage`'s (test/sinks-amqp/mapping.test.ts holds them equal), without the intermediate message objects
 * and the composite tables: header (§3.2.1), message annotations (§3.2.3), properties (§3.2.4,
 * fields 0-9, the unset ones null), application properties (§3.2.5), one data section (§3.2.6).
 */
export function encodeRecord(w: Writer, r: FeedRecord, durable: boolean, annotations?: Record<string, unknown>): void {
  if (durable) {
    w.ensure(7);
    w.buf.set(DURABLE_HEADER, w.pos);
    w.pos += 7;
  }
  if (annotations) {
    described(w, 0x72);
    w.map(annotations, true);
  }
  described(w, 0x73);
  const list = w.beginCompound(0xc0);
  w.string(r.id); // message-id
  w.null(); // user-id
  w.null(); // to
  w.string(r.type); // subject
  w.null(); // reply-to
  w.null(); // correlation-id
  w.symbol(CONTENT_TYPE); // content-type
  w.null(); // content-encoding
  if (Number.isNaN(r.expires)) w.null();
  else w.timestamp(r.expires); // absolute-expiry-time
  w.timestamp(r.ts); // creation-time
  w.endCompound(list, 10);
  described(w, 0x74);
  const map = w.beginCompound(0xc1);
  w.string('from');
  w.string(r.from);
  w.string('type');
  w.string(r.type);
  if (r.to !== null) {
    w.string('to');
    w.string(r.to);
  }
  w.endCompound(map, r.to === null ? 4 : 6);
  described(w, 0x75);
  w.binary(r.json);
}

/** A section's descriptor: 0x00, smallulong, its code (§1.2, §3.2). */
function described(w: Writer, code: number): void {
  w.ensure(3);
  w.buf[w.pos] = 0x00;
  w.buf[w.pos + 1] = 0x53;
  w.buf[w.pos + 2] = code;
  w.pos += 3;
}

/** The header section of a durable message: a list of one field, durable = true. */
const DURABLE_HEADER = Buffer.from([0x00, 0x53, 0x70, 0xc0, 0x02, 0x01, 0x41]);
