// How a Nitrogen envelope travels as an AMQP message (docs/sinks.md, "Message mapping").
// The body is the whole envelope as UTF-8 JSON in one data section (AMQP 1.0 §3.2.6):
// every AMQP 1.0 client reads a data section as bytes, whereas an amqp-value map would
// need an AMQP-typed decoder and could not hold every JSON number exactly.
import { encodeMessage as envelopeJson, type Message as Envelope } from '../../core/message.js';
import type { FeedRecord } from '../../core/ports/store.js';
import type { Message as AmqpMessage } from '@nitrogen/amqp';

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

/** The same AMQP message from a stored record: its envelope bytes are the body as they are, unparsed. */
export function recordToAmqpMessage(r: FeedRecord, durable: boolean, annotations?: Record<string, unknown>): AmqpMessage {
  const applicationProperties: Record<string, unknown> = r.to === null ? { from: r.from, type: r.type } : { from: r.from, type: r.type, to: r.to };
  const message: AmqpMessage = {
    properties: {
      messageId: r.id,
      subject: r.type,
      contentType: CONTENT_TYPE,
      creationTime: new Date(r.ts),
      ...(Number.isNaN(r.expires) ? {} : { absoluteExpiryTime: new Date(r.expires) }),
    },
    applicationProperties,
    body: r.json,
  };
  if (durable) message.header = { durable: true };
  if (annotations) message.messageAnnotations = annotations;
  return message;
}
