// Messaging composites of AMQP 1.0 part 3: delivery states and outcomes
// (§3.4) and the source and target termini (§3.5). Their tables register
// themselves by name, for the fields of performatives that hold them.
import { define, MANDATORY, MULTIPLE, OPTIONAL } from './codec/described.js';
import type { ErrorCondition } from './errors.js';

/** §3.4.1 received */
define(
  'received',
  0x23,
  'amqp:received:list',
  [
    ['section-number', 'uint', MANDATORY],
    ['section-offset', 'ulong', MANDATORY],
  ],
  true,
);
/** §3.4.2 accepted */
define('accepted', 0x24, 'amqp:accepted:list', [], true);
/** §3.4.3 rejected */
define('rejected', 0x25, 'amqp:rejected:list', [['error', 'error']], true);
/** §3.4.4 released */
define('released', 0x26, 'amqp:released:list', [], true);
/** §3.4.5 modified */
define(
  'modified',
  0x27,
  'amqp:modified:list',
  [
    ['delivery-failed', 'boolean'],
    ['undeliverable-here', 'boolean'],
    ['message-annotations', 'fields'],
  ],
  true,
);

export type Outcome = { type: 'accepted' } | { type: 'rejected'; error?: ErrorCondition } | { type: 'released' } | { type: 'modified'; deliveryFailed?: boolean; undeliverableHere?: boolean; messageAnnotations?: Record<string, unknown> };
export type DeliveryState = Outcome | { type: 'received'; sectionNumber: number; sectionOffset: bigint };

/** §3.5.3 source */
export interface Source {
  address?: string;
  durable?: number;
  expiryPolicy?: string;
  timeout?: number;
  dynamic?: boolean;
  dynamicNodeProperties?: Record<string, unknown>;
  distributionMode?: string;
  filter?: Record<string, unknown>;
  defaultOutcome?: unknown;
  outcomes?: string[];
  capabilities?: string[];
}
define<Source>('source', 0x28, 'amqp:source:list', [
  ['address', '*'],
  ['durable', 'uint', OPTIONAL, 0], // §3.5.5 terminus-durability: 0 none, 1 configuration, 2 unsettled-state
  ['expiry-policy', 'symbol', OPTIONAL, 'session-end'],
  ['timeout', 'uint', OPTIONAL, 0],
  ['dynamic', 'boolean', OPTIONAL, false],
  ['dynamic-node-properties', 'fields'],
  ['distribution-mode', 'symbol'],
  ['filter', 'fields'],
  ['default-outcome', '*'],
  ['outcomes', 'symbol', MULTIPLE],
  ['capabilities', 'symbol', MULTIPLE],
]);

/** §3.5.4 target */
export interface Target {
  address?: string;
  durable?: number;
  expiryPolicy?: string;
  timeout?: number;
  dynamic?: boolean;
  dynamicNodeProperties?: Record<string, unknown>;
  capabilities?: string[];
}
define<Target>('target', 0x29, 'amqp:target:list', [
  ['address', '*'],
  ['durable', 'uint', OPTIONAL, 0],
  ['expiry-policy', 'symbol', OPTIONAL, 'session-end'],
  ['timeout', 'uint', OPTIONAL, 0],
  ['dynamic', 'boolean', OPTIONAL, false],
  ['dynamic-node-properties', 'fields'],
  ['capabilities', 'symbol', MULTIPLE],
]);
