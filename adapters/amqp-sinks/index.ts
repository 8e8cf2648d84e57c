// The AMQP sinks: `amqp` for any AMQP 1.0 broker, `eventhubs` for Azure Event Hubs. See docs/sinks.md.
export { AmqpSink, AmqpSinkOptions, amqpSinkPlugin } from './amqp-sink.js';
export { EventHubsSink, EventHubsSinkOptions, eventHubsSinkPlugin } from './eventhubs-sink.js';
export { parseConnectionString, type HubAddress } from './connection-string.js';
export { sasToken, SAS_TOKEN_TYPE } from './cbs.js';
export { BATCH_FORMAT, PARTITION_KEY } from './hub-batches.js';
export { toAmqpMessage, CONTENT_TYPE } from './mapping.js';
