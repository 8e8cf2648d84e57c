// Debug logging by namespace (off by default; enable with DEBUG=nitrogen:amqp:*).
// Hot paths test `.enabled` before formatting anything. No namespace shows
// message payloads or credentials: frames are logged as performatives with
// SASL data replaced by its length, socket traffic by size only.
import createDebug from 'debug';

export const log = {
  /** Every frame, decoded into a readable performative. */
  frames: createDebug('nitrogen:amqp:frames'),
  /** Every socket read and write, by size (how the peer and we batch bytes into segments). */
  socket: createDebug('nitrogen:amqp:socket'),
  connection: createDebug('nitrogen:amqp:connection'),
  sasl: createDebug('nitrogen:amqp:sasl'),
  link: createDebug('nitrogen:amqp:link'),
};
