// The transport performatives of AMQP 1.0 §2.7 and the error type of §2.8.14,
// as data tables. The interfaces beside them are the JavaScript shape of each
// (camelCase keys); defaults from the spec are filled in on decode.
import { define, MANDATORY, MULTIPLE, OPTIONAL } from './codec/described.js';
import type { ErrorCondition } from './errors.js';
import type { FrameTable } from './frames.js';
import type { DeliveryState, Source, Target } from './messaging.js';
import './messaging.js'; // attach and transfer fields refer to its composites by name

export type Fields = Record<string, unknown>;

/** §2.8.14 */
define<ErrorCondition>('error', 0x1d, 'amqp:error:list', [
  ['condition', 'symbol', MANDATORY],
  ['description', 'string'],
  ['info', 'fields'],
]);

/** §2.7.1 */
export interface Open {
  containerId: string;
  hostname?: string;
  maxFrameSize?: number;
  channelMax?: number;
  idleTimeOut?: number;
  outgoingLocales?: string[];
  incomingLocales?: string[];
  offeredCapabilities?: string[];
  desiredCapabilities?: string[];
  properties?: Fields;
}
export const OpenType = define<Open>('open', 0x10, 'amqp:open:list', [
  ['container-id', 'string', MANDATORY],
  ['hostname', 'string'],
  ['max-frame-size', 'uint', OPTIONAL, 4294967295],
  ['channel-max', 'ushort', OPTIONAL, 65535],
  ['idle-time-out', 'uint'], // milliseconds
  ['outgoing-locales', 'symbol', MULTIPLE],
  ['incoming-locales', 'symbol', MULTIPLE],
  ['offered-capabilities', 'symbol', MULTIPLE],
  ['desired-capabilities', 'symbol', MULTIPLE],
  ['properties', 'fields'],
]);

/** §2.7.2 */
export interface Begin {
  remoteChannel?: number;
  nextOutgoingId: number;
  incomingWindow: number;
  outgoingWindow: number;
  handleMax?: number;
  offeredCapabilities?: string[];
  desiredCapabilities?: string[];
  properties?: Fields;
}
export const BeginType = define<Begin>('begin', 0x11, 'amqp:begin:list', [
  ['remote-channel', 'ushort'],
  ['next-outgoing-id', 'uint', MANDATORY],
  ['incoming-window', 'uint', MANDATORY],
  ['outgoing-window', 'uint', MANDATORY],
  ['handle-max', 'uint', OPTIONAL, 4294967295],
  ['offered-capabilities', 'symbol', MULTIPLE],
  ['desired-capabilities', 'symbol', MULTIPLE],
  ['properties', 'fields'],
]);

/** §2.8.2 sender-settle-mode, §2.8.3 receiver-settle-mode */
export const SenderSettleMode = { Unsettled: 0, Settled: 1, Mixed: 2 } as const;
export const ReceiverSettleMode = { First: 0, Second: 1 } as const;
/** §2.8.1: role is a boolean on the wire. */
export const Role = { Sender: false, Receiver: true } as const;

/** §2.7.3 */
export interface Attach {
  name: string;
  handle: number;
  role: boolean;
  sndSettleMode?: number;
  rcvSettleMode?: number;
  source?: Source;
  target?: Target;
  unsettled?: Map<unknown, unknown> | Fields;
  incompleteUnsettled?: boolean;
  initialDeliveryCount?: number;
  maxMessageSize?: bigint | number;
  offeredCapabilities?: string[];
  desiredCapabilities?: string[];
  properties?: Fields;
}
export const AttachType = define<Attach>('attach', 0x12, 'amqp:attach:list', [
  ['name', 'string', MANDATORY],
  ['handle', 'uint', MANDATORY],
  ['role', 'boolean', MANDATORY],
  ['snd-settle-mode', 'ubyte', OPTIONAL, SenderSettleMode.Mixed],
  ['rcv-settle-mode', 'ubyte', OPTIONAL, ReceiverSettleMode.First],
  ['source', 'source'],
  ['target', 'target'],
  ['unsettled', 'map'],
  ['incomplete-unsettled', 'boolean', OPTIONAL, false],
  ['initial-delivery-count', 'uint'],
  ['max-message-size', 'ulong'],
  ['offered-capabilities', 'symbol', MULTIPLE],
  ['desired-capabilities', 'symbol', MULTIPLE],
  ['properties', 'fields'],
]);

/** §2.7.4 */
export interface Flow {
  nextIncomingId?: number;
  incomingWindow: number;
  nextOutgoingId: number;
  outgoingWindow: number;
  handle?: number;
  deliveryCount?: number;
  linkCredit?: number;
  available?: number;
  drain?: boolean;
  echo?: boolean;
  properties?: Fields;
}
export const FlowType = define<Flow>('flow', 0x13, 'amqp:flow:list', [
  ['next-incoming-id', 'uint'],
  ['incoming-window', 'uint', MANDATORY],
  ['next-outgoing-id', 'uint', MANDATORY],
  ['outgoing-window', 'uint', MANDATORY],
  ['handle', 'uint'],
  ['delivery-count', 'uint'],
  ['link-credit', 'uint'],
  ['available', 'uint'],
  ['drain', 'boolean', OPTIONAL, false],
  ['echo', 'boolean', OPTIONAL, false],
  ['properties', 'fields'],
]);

/** §2.7.5 */
export interface Transfer {
  handle: number;
  deliveryId?: number;
  deliveryTag?: Buffer;
  messageFormat?: number;
  settled?: boolean;
  more?: boolean;
  rcvSettleMode?: number;
  state?: DeliveryState;
  resume?: boolean;
  aborted?: boolean;
  batchable?: boolean;
}
export const TransferType = define<Transfer>('transfer', 0x14, 'amqp:transfer:list', [
  ['handle', 'uint', MANDATORY],
  ['delivery-id', 'uint'],
  ['delivery-tag', 'binary'],
  ['message-format', 'uint'],
  ['settled', 'boolean'],
  ['more', 'boolean', OPTIONAL, false],
  ['rcv-settle-mode', 'ubyte'],
  ['state', 'delivery-state'],
  ['resume', 'boolean', OPTIONAL, false],
  ['aborted', 'boolean', OPTIONAL, false],
  ['batchable', 'boolean', OPTIONAL, false],
]);

/** §2.7.6 */
export interface Disposition {
  role: boolean;
  first: number;
  last?: number;
  settled?: boolean;
  state?: DeliveryState;
  batchable?: boolean;
}
export const DispositionType = define<Disposition>('disposition', 0x15, 'amqp:disposition:list', [
  ['role', 'boolean', MANDATORY],
  ['first', 'uint', MANDATORY],
  ['last', 'uint'],
  ['settled', 'boolean', OPTIONAL, false],
  ['state', 'delivery-state'],
  ['batchable', 'boolean', OPTIONAL, false],
]);

/** §2.7.7 */
export interface Detach {
  handle: number;
  closed?: boolean;
  error?: ErrorCondition;
}
export const DetachType = define<Detach>('detach', 0x16, 'amqp:detach:list', [
  ['handle', 'uint', MANDATORY],
  ['closed', 'boolean', OPTIONAL, false],
  ['error', 'error'],
]);

/** §2.7.8, §2.7.9 */
interface End {
  error?: ErrorCondition;
}
interface Close {
  error?: ErrorCondition;
}
export const EndType = define<End>('end', 0x17, 'amqp:end:list', [['error', 'error']]);
export const CloseType = define<Close>('close', 0x18, 'amqp:close:list', [['error', 'error']]);

/**
 * Every performative by name with the JavaScript shape of its body: the table
 * AMQP frames are decoded by, and the shape of the handler tables they are
 * dispatched to.
 */
export interface PerformativeBodies {
  open: Open;
  begin: Begin;
  attach: Attach;
  flow: Flow;
  transfer: Transfer;
  disposition: Disposition;
  detach: Detach;
  end: End;
  close: Close;
}
export const Performatives: FrameTable<PerformativeBodies> = {
  open: OpenType,
  begin: BeginType,
  attach: AttachType,
  flow: FlowType,
  transfer: TransferType,
  disposition: DispositionType,
  detach: DetachType,
  end: EndType,
  close: CloseType,
};
