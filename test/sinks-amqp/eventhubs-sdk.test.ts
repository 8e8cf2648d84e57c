// Wire compatibility: the official @azure/event-hubs producer and our eventhubs sink talk to
// the same fake hub, and what each sends (the CBS put-token request, the sender link, the
// batch message and its events' annotations) must have the same shape.
import assert from 'node:assert/strict';
import { EventHubProducerClient } from '@azure/event-hubs';
import type { Message as RheaMessage } from 'rhea';
import { EventHubsSink, EventHubsSinkOptions } from '../../adapters/amqp-sinks/index.js';
import { createLogger } from '../../core/logger.js';
import { EventHubsPeer, type HubTransfer } from '../helpers/eventhubs-peer.js';
import { Counter, Registry } from 'prom-client';

/** The shape of a CBS request: section fields present, application properties with their JavaScript types, the token's fields. */
function cbsShape(m: RheaMessage) {
  const props = m.application_properties as Record<string, unknown>;
  const token = m.body as string;
  return {
    properties: ['message_id', 'reply_to', 'to'].filter((k) => (m as unknown as Record<string, unknown>)[k] !== undefined),
    to: m.to,
    applicationProperties: Object.fromEntries(Object.entries(props).map(([k, v]) => [k, k === 'name' ? v : typeof v === 'string' ? v : typeof v])),
    bodyIsString: typeof token === 'string',
    tokenFields: token
      .replace(/^SharedAccessSignature /, '')
      .split('&')
      .map((kv) => kv.split('=')[0])
      .sort(),
    tokenResource: /sr=([^&]*)/.exec(token)?.[1],
    tokenKeyName: /skn=([^&]*)/.exec(token)?.[1],
  };
}

/** The shape of a hub transfer: format, envelope annotations, number of data sections, each event's annotations. */
function transferShape(tr: HubTransfer) {
  return {
    address: tr.address,
    format: tr.format,
    envelopeAnnotations: tr.message.message_annotations,
    envelopeHasOtherSections: ['message_id', 'application_properties', 'durable'].some((k) => (tr.message as unknown as Record<string, unknown>)[k] !== undefined),
    events: tr.events.map((e) => ({ annotations: e.message_annotations, bodyIsData: (e.body as { typecode?: number }).typecode === 0x75 })),
  };
}

describe('eventhubs sink: the same wire as the official @azure/event-hubs producer', function () {
  this.timeout(30_000);
  let hub: EventHubsPeer;
  before(async () => {
    hub = await EventHubsPeer.start();
  });
  after(async () => {
    await hub.stop();
  });

  it('puts the same CBS request and sends batch messages with the same annotations', async () => {
    const producer = new EventHubProducerClient(hub.connectionString());
    try {
      await producer.sendBatch([{ body: { n: 1 } }, { body: { n: 2 } }], { partitionKey: 'car-1' });
    } finally {
      await producer.close();
    }
    const sdk = { cbs: hub.cbsRequests.slice(), transfers: hub.transfers.slice() };
    hub.cbsRequests.length = 0;
    hub.transfers.length = 0;

    const options = EventHubsSinkOptions.parse({ connectionString: hub.connectionString() });
    const sink = new EventHubsSink('hub', options, createLogger('silent'), new Counter({ name: 'renewals', help: 'h', labelNames: ['sink', 'outcome'], registers: [new Registry()] }));
    await sink.start();
    const ts = new Date().toISOString();
    try {
      await sink.send([
        { id: 'm-1', type: 'telemetry', from: 'car-1', ts, body: { n: 1 } },
        { id: 'm-2', type: 'telemetry', from: 'car-1', ts, body: { n: 2 } },
      ]);
    } finally {
      await sink.stop();
    }
    const ours = { cbs: hub.cbsRequests.slice(), transfers: hub.transfers.slice() };

    assert.equal(sdk.cbs.length, 1);
    assert.equal(ours.cbs.length, 1);
    assert.equal(sdk.cbs[0]!.status, 202, sdk.cbs[0]!.description);
    assert.equal(ours.cbs[0]!.status, 202, ours.cbs[0]!.description);
    assert.deepEqual(cbsShape(ours.cbs[0]!.message), cbsShape(sdk.cbs[0]!.message));

    assert.equal(sdk.transfers.length, 1);
    assert.equal(ours.transfers.length, 1);
    assert.deepEqual(transferShape(ours.transfers[0]!), transferShape(sdk.transfers[0]!));
  });
});
