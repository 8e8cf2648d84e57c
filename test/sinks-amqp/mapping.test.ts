// The amqp sinks encode stored records straight into AMQP bytes (mapping.ts, encodeRecord). Those
// bytes must be exactly what the general encoder writes for the same envelope mapped as a message
// (toAmqpMessage): one mapping, whichever way a message comes.
import assert from 'node:assert/strict';
import { encodeMessage as envelopeJson, type Message } from '../../core/message.js';
import type { FeedRecord } from '../../core/ports/store.js';
import { encodeMessage, Writer } from '@nitrogen/amqp';
import { encodeRecord, toAmqpMessage } from '../../adapters/amqp-sinks/mapping.js';

function record(m: Message): FeedRecord {
  return { id: m.id, from: m.from, type: m.type, to: m.to ?? null, ts: Date.parse(m.ts), expires: m.expires === undefined ? NaN : Date.parse(m.expires), json: Buffer.from(envelopeJson(m), 'utf8') };
}

const base: Message = { id: '01J0000000000000000000000A', type: 'telemetry', from: 'car-17', ts: '2026-12-08T01:02:03.456Z', body: { speedKmh: 88 } };
const cases: Array<[string, Message]> = [
  ['a plain message', base],
  ['with to and expires', { ...base, to: 'fleet-ops', expires: '2026-12-09T00:00:00.000Z', tags: ['a', 'b'] }],
  ['with a body over 255 bytes (vbin32) and properties over 255 bytes (list32)', { ...base, id: 'x'.repeat(128), type: 't'.repeat(64), from: 'f'.repeat(128), body: { text: 'é'.repeat(400) } }],
];

describe('amqp sinks: records encoded as their envelope maps', () => {
  for (const [name, m] of cases) {
    for (const durable of [true, false]) {
      for (const annotations of [undefined, { 'x-opt-partition-key': m.from }]) {
        it(`${name}, durable ${durable}, ${annotations ? 'with' : 'without'} annotations`, () => {
          const expected = new Writer(64);
          encodeMessage(expected, toAmqpMessage(m, durable, annotations));
          const actual = new Writer(64);
          encodeRecord(actual, record(m), durable, annotations);
          assert.deepEqual(actual.toBuffer(), expected.toBuffer());
        });
      }
    }
  }
});
