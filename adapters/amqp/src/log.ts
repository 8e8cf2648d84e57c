// Debug logging by namespace (off by default; enable with DEBUG=nitrogen:amqp:*).
// Hot paths test `.enabled` before formatting anything.
import createDebug from 'debug';

export const log = {
  /** Every frame, decoded into a readable performative. */
  frames: createDebug('nitrogen:amqp:frames'),
  /** Every byte read and written, in hex. */
  raw: createDebug('nitrogen:amqp:raw'),
  connection: createDebug('nitrogen:amqp:connection'),
  sasl: createDebug('nitrogen:amqp:sasl'),
  link: createDebug('nitrogen:amqp:link'),
};
