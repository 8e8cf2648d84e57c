// The amqp sink against an in-process rhea broker (rhea-broker.ts): end to end from MQTT
// devices through a real server to an independent rhea receiver, and how outcomes, a lost
// connection, a silent peer and bad configuration reach the Sink port.
import assert from 'node:assert/strict';
import rhea, { type EventContext, type Message as RheaMessage } from 'rhea';
import { AmqpSink, AmqpSinkOptions } from '../../adapters/amqp-sinks/index.js';
import { isNitrogenError } from '../../core/errors.js';
import { createLogger } from '../../core/logger.js';
import type { Message } from '../../core/message.js';
import { RheaBroker } from './rhea-broker.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { fastDelivery, publishFromDevices, sinkStatus, storedMessages, until } from './util.js';

/** Receives everything sent to `address` at the peer with a rhea client of its own. */
async function rheaReceiver(url: string, address: string): Promise<{ messages: RheaMessage[]; close(): void }> {
  const { port } = new URL(url);
  const messages: RheaMessage[] = [];
  const container = rhea.create_container({ id: 'independent-receiver' });
  const connection = container.connect({ host: '127.0.0.1', port: Number(port), reconnect: false });
  connection.open_receiver({ source: { address }, credit_window: 500 });
  container.on('message', (ctx) => messages.push(ctx.message));
  await new Promise((resolve) => container.once('receiver_open', resolve));
  return { messages, close: () => connection.close() };
}

const envelope = (i: number, extra: Partial<Message> = {}): Message => ({ id: `m-${i}`, type: 'telemetry', from: 'car-1', ts: new Date(1_700_000_000_000 + i).toISOString(), body: { i }, ...extra });

describe('amqp sink against an in-process rhea broker', function () {
  this.timeout(20_000);
  let peer: RheaBroker;
  let t: TestServer | undefined;
  let sink: AmqpSink | undefined;

  beforeEach(async () => {
    peer = await RheaBroker.start();
  });
  afterEach(async () => {
    await t?.stop();
    await sink?.stop();
    t = undefined;
    sink = undefined;
    await peer.stop();
  });

  function directSink(options: Record<string, unknown> = {}): AmqpSink {
    sink = new AmqpSink('direct', AmqpSinkOptions.parse({ url: peer.url, address: 'q', ...options }), createLogger('silent'));
    return sink;
  }

  it('delivers what devices publish over MQTT, each message exactly as its envelope says', async () => {
    t = await startServer({ sinks: [{ use: 'amqp', name: 'broker', delivery: fastDelivery, filter: { type: ['telemetry'] }, options: { url: peer.url, address: 'telemetry' } }] });
    const receiver = await rheaReceiver(peer.url, 'telemetry');
    try {
      await publishFromDevices(t, ['car-1', 'car-2'], 25);
      await t.grant({ issuedTo: 'car-1', principalFor: 'car-2', action: 'send', authorized: true });
      const token = (await t.api('POST', '/principals/car-1/impersonate')).body.accessToken;
      assert.equal(
        (
          await t.api('POST', '/messages', {
            token,
            body: [
              { type: 'location', body: 'filtered out' },
              { type: 'telemetry', to: 'car-2', tags: ['a'], expires: '2099-01-01T00:00:00Z', body: { last: true } },
            ],
          })
        ).status,
        201,
      );
      await until(() => receiver.messages.length >= 51, 8000, '51 messages at the receiver');
      const stored = (await storedMessages(t)).filter((m) => m.type === 'telemetry');
      assert.equal(stored.length, 51);
      assert.deepEqual(receiver.messages.map((m) => m.message_id).sort(), stored.map((m) => m.id).sort(), 'each stored message once');
      const byId = new Map(stored.map((m) => [m.id, m]));
      for (const m of receiver.messages) {
        const e = byId.get(m.message_id as string)!;
        assert.deepEqual(JSON.parse(Buffer.from((m.body as { content: Buffer }).content).toString('utf8')), e, 'the body is the envelope as JSON in a data section');
        assert.equal(m.content_type, 'application/json');
        assert.equal(m.subject, e.type);
        assert.equal((m.creation_time as Date).toISOString(), e.ts);
        assert.equal(m.durable, true);
        assert.deepEqual(m.application_properties, e.to ? { from: e.from, type: e.type, to: e.to } : { from: e.from, type: e.type });
        if (e.expires) assert.equal((m.absolute_expiry_time as Date).toISOString(), e.expires);
      }
      for (const device of ['car-1', 'car-2']) {
        const seqs = receiver.messages.map((m) => byId.get(m.message_id as string)!).filter((e) => e.from === device && (e.body as { seq?: number }).seq !== undefined);
        assert.deepEqual(
          seqs.map((e) => (e.body as { seq: number }).seq),
          Array.from({ length: 25 }, (_, i) => i),
          `${device} in order`,
        );
      }
      await until(async () => (await sinkStatus(t!, 'broker')).delivered === 51, 5000, 'the runner counts 51 delivered');
    } finally {
      receiver.close();
    }
  });

  it('reports a rejected message by its index, the others sent concurrently being accepted', async () => {
    peer.outcome = (m) => (m.message_id === 'm-3' ? 'reject' : 'accept');
    await assert.rejects(directSink().send(Array.from({ length: 8 }, (_, i) => envelope(i))), (err: unknown) => {
      assert.ok(isNitrogenError(err, 'NITROGEN_ERR_SINK_REJECTED'), String(err));
      assert.equal(err.details?.index, 3);
      assert.match(err.message, /message m-3 refused: message rejected: amqp:precondition-failed/);
      return true;
    });
    assert.equal(peer.received.get('q')!.length, 8, 'all eight were sent at once');
  });

  it('reports the first failure in batch order: released before rejected is retryable', async () => {
    peer.outcome = (m) => (m.message_id === 'm-2' ? 'release' : m.message_id === 'm-5' ? 'reject' : m.message_id === 'm-6' ? 'modify' : 'accept');
    await assert.rejects(directSink().send(Array.from({ length: 8 }, (_, i) => envelope(i))), (err: unknown) => {
      assert.ok(isNitrogenError(err, 'NITROGEN_ERR_SINK_RETRYABLE'), String(err));
      assert.match(err.message, /message m-2 not accepted: message released/);
      assert.equal((err.cause as { outcome?: string }).outcome, 'released', 'the AMQP error is the cause');
      return true;
    });
  });

  it('dead-letters a rejected message through the runner and delivers the rest', async () => {
    const seqOf = (m: { body?: unknown }): number | undefined => JSON.parse(Buffer.from((m.body as { content: Buffer }).content).toString()).body?.seq;
    // rhea 3.0.5 merges a run that holds one delivery with the next one into one disposition
    // range with the first's outcome (write_dispositions compares outcomes only once a run has
    // two): an `accepted` just before would swallow this `rejected`. So it is rejected on its own turn.
    peer.outcome = (m) => (seqOf(m) === 2 ? 'none' : 'accept');
    peer.container.on('message', (ctx: EventContext) => {
      if (seqOf(ctx.message!) === 2) setImmediate(() => ctx.delivery!.reject({ condition: 'amqp:precondition-failed', description: 'refused by the test' }));
    });
    t = await startServer({ sinks: [{ use: 'amqp', name: 'broker', delivery: fastDelivery, options: { url: peer.url, address: 'q' } }] });
    await publishFromDevices(t, ['car-1'], 5);
    await until(async () => (await sinkStatus(t!, 'broker')).delivered === 4);
    const letters = (await t.api('GET', '/sinks/broker/dead-letters')).body.deadLetters;
    assert.deepEqual(
      letters.map((l: { message: Message }) => (l.message.body as { seq: number }).seq),
      [2],
    );
  });

  it('fails in-flight sends as retryable when the connection drops, and reconnects on the next send', async () => {
    peer.outcome = () => 'none';
    const s = directSink();
    const pending = s.send([envelope(1), envelope(2)]);
    await until(() => (peer.received.get('q')?.length ?? 0) === 2);
    peer.dropConnections();
    await assert.rejects(pending, (err: unknown) => isNitrogenError(err, 'NITROGEN_ERR_SINK_RETRYABLE'));
    peer.outcome = () => 'accept';
    await s.send([envelope(1), envelope(2)]);
    assert.equal(peer.received.get('q')!.length, 4);
  });

  it('gives up on a peer that never settles after sendTimeoutMs, and starts again', async () => {
    peer.outcome = () => 'none';
    const s = directSink({ sendTimeoutMs: 300 });
    await assert.rejects(s.send([envelope(1)]), (err: unknown) => isNitrogenError(err, 'NITROGEN_ERR_SINK_RETRYABLE') && /no outcome within 300 ms/.test(err.message));
    peer.outcome = () => 'accept';
    await s.send([envelope(1)]);
  });

  it('starts while the broker is unreachable, and says why in its retries without the password', async () => {
    const url = 'amqp://user:pa55word@127.0.0.1:1';
    t = await startServer({ sinks: [{ use: 'amqp', name: 'away', delivery: fastDelivery, options: { url, address: 'q' } }] });
    await publishFromDevices(t, ['car-1'], 1);
    await until(async () => (await sinkStatus(t!, 'away')).retrying);
    const status = await sinkStatus(t, 'away');
    assert.match(status.lastError!, /away: cannot connect to amqp:\/\/127\.0\.0\.1:1 q: .*ECONNREFUSED/);
    assert.equal(status.lastError!.includes('pa55word'), false);
  });

  it('refuses a bad URL at start, naming the field and not the password', async () => {
    await assert.rejects(startServer({ sinks: [{ use: 'amqp', options: { url: 'http://user:pa55word@host', address: 'q' } }] }), (err: any) => {
      assert.equal(err.code, 'NITROGEN_ERR_CONFIG');
      assert.match(err.message, /sinks\.0\.options\.url: must be an amqp:\/\/ or amqps:\/\/ URL/);
      assert.equal(err.message.includes('pa55word'), false);
      return true;
    });
    await assert.rejects(startServer({ sinks: [{ use: 'amqp', options: { url: peer.url } }] }), /sinks\.0\.options\.address/);
  });
});
