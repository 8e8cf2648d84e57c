// The eventhubs sink end to end: devices publish over MQTT to a real server, whose sink
// authenticates to a fake hub (bench/lib/eventhubs-peer.ts) with a CBS token and sends
// batch messages that the hub decodes back into the stored envelopes.
import assert from 'node:assert/strict';
import type { Message as RheaMessage } from 'rhea';
import { Client, Policy, Sasl } from '@nitrogen/amqp';
import { EventHubsSinkOptions } from '../../adapters/amqp-sinks/index.js';
import type { Message } from '../../core/message.js';
import { EventHubsPeer } from '../helpers/eventhubs-peer.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { fastDelivery, publishFromDevices, sinkStatus, storedMessages, until } from './util.js';

const bodyOf = (event: RheaMessage): Message => JSON.parse(Buffer.from((event.body as { content: Buffer }).content).toString('utf8'));

describe('eventhubs sink against a fake Event Hubs', function () {
  this.timeout(20_000);
  let hub: EventHubsPeer;
  let t: TestServer | undefined;

  afterEach(async () => {
    await t?.stop();
    t = undefined;
    await hub.stop();
  });

  async function serve(options: Record<string, unknown> = {}, hubOptions = {}): Promise<void> {
    hub = await EventHubsPeer.start(hubOptions);
    t = await startServer({ sinks: [{ use: 'eventhubs', name: 'hub', delivery: fastDelivery, options: { connectionString: hub.connectionString(), ...options } }] });
  }

  it('authenticates with a SAS token on $cbs and delivers every envelope, in batch messages keyed by device', async () => {
    await serve();
    await publishFromDevices(t!, ['car-1', 'car-2', 'car-3'], 20);
    await until(() => hub.events.length >= 60, 8000, '60 events at the hub');
    const stored = await storedMessages(t!);
    assert.equal(stored.length, 60);

    const [put] = hub.cbsRequests;
    assert.equal(put!.status, 202, put!.description);
    assert.equal(put!.message.application_properties!.name, `${hub.endpoint}${hub.hub}`);
    assert.ok(hub.transfers.every((tr) => tr.format === 0x80013700 && tr.address === hub.hub));

    const byId = new Map(stored.map((m) => [m.id, m]));
    for (const { partitionKey, event } of hub.events) {
      const envelope = bodyOf(event);
      assert.deepEqual(envelope, byId.get(envelope.id), 'the body is the stored envelope');
      assert.equal(partitionKey, envelope.from, 'the batch is keyed by the sending device');
      assert.equal(event.message_annotations!['x-opt-partition-key'], envelope.from);
      assert.equal(event.message_id, envelope.id);
      assert.equal(event.content_type, 'application/json');
      assert.equal(event.subject, 'telemetry');
      assert.equal((event.creation_time as Date).toISOString(), envelope.ts);
      assert.deepEqual(event.application_properties, { from: envelope.from, type: 'telemetry' });
    }
    assert.equal(new Set(hub.events.map((e) => bodyOf(e.event).id)).size, 60, 'no event twice');
    for (const device of ['car-1', 'car-2', 'car-3']) {
      const seqs = hub.events
        .map((e) => bodyOf(e.event))
        .filter((m) => m.from === device)
        .map((m) => (m.body as { seq: number }).seq);
      assert.deepEqual(
        seqs,
        Array.from({ length: 20 }, (_, i) => i),
        `${device}'s events in order`,
      );
    }
    await until(async () => (await sinkStatus(t!, 'hub')).delivered === 60, 5000, 'the runner counts 60 delivered');
  });

  it("fills batch messages up to the link's max-message-size, in order", async () => {
    await serve({}, { maxMessageSize: 4096 });
    await t!.register([{ type: 'device', id: 'car-1' }]);
    const token = (await t!.api('POST', '/principals/car-1/impersonate')).body.accessToken;
    // One request, one commit: the runner reads batches of 50 and 10.
    const posted = await t!.api('POST', '/messages', { token, body: Array.from({ length: 60 }, (_, i) => ({ type: 'telemetry', body: { seq: i, note: 'x'.repeat(200) } })) });
    assert.equal(posted.status, 201);
    await until(() => hub.events.length >= 60);
    const sizes = hub.transfers.map((tr) => (tr.message.body as { content: Buffer[] }).content.reduce((n, b) => n + b.length + 5, 0));
    assert.ok(
      sizes.every((n) => n <= 4096),
      `every batch within the limit: ${sizes.join(',')}`,
    );
    const least = Math.ceil(sizes.reduce((a, b) => a + b, 0) / 4096);
    assert.ok(hub.transfers.length <= least + 2, `${hub.transfers.length} batch messages where ${least} could hold everything: full but for the last of each send`);
    assert.deepEqual(
      hub.events.map((e) => (bodyOf(e.event).body as { seq: number }).seq),
      Array.from({ length: 60 }, (_, i) => i),
    );
  });

  it('sends to one partition when partitionId is set, without partition keys', async () => {
    await serve({ partitionId: '1' });
    for (const id of ['car-1', 'car-2']) {
      await t!.register([{ type: 'device', id }]);
      const token = (await t!.api('POST', `/principals/${id}/impersonate`)).body.accessToken;
      assert.equal((await t!.api('POST', '/messages', { token, body: Array.from({ length: 5 }, (_, i) => ({ type: 'telemetry', body: { seq: i } })) })).status, 201);
    }
    await until(() => hub.events.length >= 10);
    assert.ok(hub.transfers.every((tr) => tr.address === `${hub.hub}/Partitions/1` && tr.message.message_annotations === undefined));
    assert.ok(hub.transfers.length <= 2, 'one batch message per send, whatever the devices');
    assert.equal(hub.cbsRequests[0]!.message.application_properties!.name, `${hub.endpoint}${hub.hub}/Partitions/1`);
  });

  it('renews the token before it expires, so the link outlives its first token', async () => {
    await serve({ tokenLifetimeSeconds: 3 });
    await publishFromDevices(t!, ['car-1'], 1);
    await until(() => hub.events.length === 1);
    const firstExpiry = Number(/se=(\d+)/.exec(hub.cbsRequests[0]!.message.body as string)![1]) * 1000;
    await until(() => hub.cbsRequests.length >= 2, 5000, 'a renewal');
    await new Promise((r) => setTimeout(r, Math.max(0, firstExpiry - Date.now()) + 200));
    await publishFromDevices(t!, ['car-2'], 1);
    await until(() => hub.events.length === 2);
    assert.ok(hub.cbsRequests.every((r) => r.status === 202));
    assert.equal(hub.expiredDetaches, 0, 'the hub never had to detach the link');
    // The sink runs in its delivery thread, whose counters reach /metrics within a second.
    await until(async () => /nitrogen_sink_token_renewals_total\{sink="hub",outcome="ok"\} [1-9]/.test((await t!.api('GET', '/metrics')).body), 5000, 'the renewal counted in /metrics');
  });

  it('with a wrong key, the hub answers 401 and the sink retries, logging why, and delivers nothing', async () => {
    hub = await EventHubsPeer.start();
    t = await startServer({ sinks: [{ use: 'eventhubs', name: 'hub', delivery: fastDelivery, options: { connectionString: hub.connectionString({ key: 'd3Jvbmcta2V5' }) } }] });
    await publishFromDevices(t, ['car-1'], 2);
    await until(async () => hub.cbsRequests.length >= 2 && (await sinkStatus(t!, 'hub')).retrying, 5000, 'a retried put-token');
    assert.ok(hub.cbsRequests.every((r) => r.status === 401 && /signature/i.test(r.description)));
    const status = await sinkStatus(t, 'hub');
    assert.match(status.lastError!, /put-token refused with status 401/);
    assert.equal(hub.transfers.length, 0);
    assert.equal(status.lastError!.includes('d3Jvbmcta2V5'), false, 'the key is not in the error');
  });

  it('dead-letters an event larger than the hub takes, and delivers the others', async () => {
    await serve({}, { maxMessageSize: 2048 });
    await publishFromDevices(t!, ['car-1'], 3, (device, i) => ({ device, seq: i, note: i === 1 ? 'x'.repeat(3000) : '' }));
    await until(async () => hub.events.length >= 2 && (await sinkStatus(t!, 'hub')).deadLettered === 1);
    const letters = (await t!.api('GET', '/sinks/hub/dead-letters')).body.deadLetters;
    assert.equal(letters.length, 1);
    assert.equal(letters[0].message.body.seq, 1);
    assert.match(letters[0].reason, /over the hub's limit of 2048/);
    assert.deepEqual(
      hub.events.map((e) => (bodyOf(e.event).body as { seq: number }).seq),
      [0, 2],
    );
  });

  it('is refused by the hub when it attaches without a token', async () => {
    hub = await EventHubsPeer.start();
    const conn = await Client.connect(`amqp://127.0.0.1:${hub.port}`, Policy.derive(Policy.EventHub, { sasl: Sasl.anonymous(), reconnect: { enabled: false } }));
    try {
      await assert.rejects(conn.createSender(hub.hub), (err: any) => err.condition === 'amqp:unauthorized-access');
      assert.equal(hub.refusedAttaches, 1);
    } finally {
      await conn.close();
    }
  });

  it('refuses a malformed connection string at start, naming the field and not the key', async () => {
    hub = await EventHubsPeer.start();
    const parse = (connectionString: string) => EventHubsSinkOptions.safeParse({ connectionString });
    const problems = (s: string) => {
      const r = parse(s);
      return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    };
    assert.deepEqual(problems('Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=s3cr3t'), ['connectionString: EntityPath is missing (the event hub name; a namespace-level string lacks it)']);
    assert.deepEqual(problems('Endpoint=https://ns/;SharedAccessKey=s3cr3t;EntityPath=h'), ['connectionString: Endpoint must look like sb://<namespace>.servicebus.windows.net/', 'connectionString: SharedAccessKeyName is missing']);
    assert.deepEqual(problems('nonsense'), ['connectionString: must be Key=Value pairs separated by ";"']);
    await assert.rejects(startServer({ sinks: [{ use: 'eventhubs', options: { connectionString: 'Endpoint=sb://ns.example/;SharedAccessKeyName=k;SharedAccessKey=s3cr3t' } }] }), (err: any) => {
      assert.equal(err.code, 'NITROGEN_ERR_CONFIG');
      assert.match(err.message, /sinks\.0\.options\.connectionString: EntityPath is missing/);
      assert.equal(err.message.includes('s3cr3t'), false);
      return true;
    });
  });
});
