// Public API of @nitrogen/amqp, an AMQP 1.0 client. See README.md.
export { Client } from './client.js';
export { Connection, type ConnectionState } from './connection.js';
export { parseUrl, type Endpoint } from './endpoint.js';
export { Session } from './session.js';
export { Sender, type SenderOptions, type SendOptions } from './sender.js';
export { Receiver, Delivery, type ReceiverOptions } from './receiver.js';
export { Policy, type ClientPolicy, type PolicyOverrides, type ReconnectPolicy, type SenderPolicy, type ReceiverPolicy } from './policy.js';
export { Sasl, type SaslMechanism } from './sasl.js';
export type { Message, Header, Properties, Annotations, MessageId } from './message.js';
export { encodeMessage, decodeMessage } from './message.js';
export type { Outcome, DeliveryState, Source, Target } from './messaging.js';
export { AmqpError, Condition, ConnectionError, DecodeError, DeliveryError, DisconnectedError, EncodeError, LinkError, OperationTimeoutError, SaslError, SendQueueFullError, SessionError, type ErrorCondition } from './errors.js';
export { FramingError } from './frames.js';
export { Writer } from './codec/encoder.js';
export { Reader, decode } from './codec/decoder.js';
export { AmqpSymbol, Char, Decimal, Described, Typed, Uuid, types, type TypeName } from './codec/types.js';
