// Integration tests of the client against an in-process rhea peer, over real sockets.
import assert from 'node:assert/strict';
import { Client, Policy, type Connection } from '../../adapters/amqp/index.js';
import { RheaPeer } from './peer.js';

describe('AMQP client against rhea: basics', () => {
  let peer: RheaPeer;
  let conn: Connection | undefined;
  beforeEach(async () => { peer = await RheaPeer.start(); });
  afterEach(async () => { await conn?.close(); conn = undefined; await peer.stop(); });

  it('sends a message that the peer accepts, and receives it back', async () => {
    conn = await Client.connect(peer.url);
    const sender = await conn.createSender('telemetry');
    const outcome = await sender.send({ body: Buffer.from('hello'), applicationProperties: { device: 'd1', seq: 1 }, messageAnnotations: { 'x-opt-partition-key': 'p1' } });
    assert.deepEqual(outcome, { type: 'accepted' });
    const got = peer.received.get('telemetry')![0];
    assert.equal(Buffer.from((got.body as { content: Buffer }).content).toString(), 'hello');
    assert.deepEqual(got.application_properties, { device: 'd1', seq: 1 });
    assert.deepEqual(got.message_annotations, { 'x-opt-partition-key': 'p1' });

    const receiver = await conn.createReceiver('telemetry', { credit: 10 });
    const d = (await receiver.receive())!;
    assert.equal((d.message.body as Buffer).toString(), 'hello');
    assert.deepEqual(d.message.applicationProperties, { device: 'd1', seq: 1 });
    d.accept();
  });
});
