import assert from 'node:assert/strict';
import { connect, type ClientError, type ConnectOptions, type Message, type Session } from '@nitrogen/client';
import type { NitrogenConfigInput } from '../core/config.js';
import { metric } from './helpers/metrics.js';
import { startServer, type TestServer } from './helpers/server.js';

/**
 * The client library against the server's limits: refusals that mean "later" are waited out,
 * refusals that mean "never" are not tried again, and every message still arrives once, in order.
 */
describe("client: the hardened server's limits", function () {
  this.timeout(30_000);
  const servers: TestServer[] = [];
  const sessions: Session[] = [];
  afterEach(async () => {
    await Promise.all(sessions.splice(0).map((s) => s.close()));
    await Promise.all(servers.splice(0).map((s) => s.stop()));
  });

  async function server(config: NitrogenConfigInput = {}): Promise<TestServer> {
    const t = await startServer(config);
    servers.push(t);
    return t;
  }
  async function open(options: ConnectOptions): Promise<Session> {
    const s = await connect(options);
    sessions.push(s);
    return s;
  }
  /** Sends `count` numbered messages at once and resolves when the server has them all. */
  async function sendNumbered(session: Session, count: number, body: (n: number) => object = (n) => ({ n })): Promise<void> {
    await Promise.all(Array.from({ length: count }, (_, n) => session.send({ type: 't', body: body(n) })));
  }
  async function storedNumbers(t: TestServer, from: string): Promise<number[]> {
    const res = await t.api('GET', `/messages?from=${from}&order=asc&limit=1000`);
    assert.equal(res.status, 200);
    return res.body.messages.map((m: Message<{ n: number }>) => m.body.n);
  }
  const upTo = (count: number) => Array.from({ length: count }, (_, n) => n);

  it('CONNACK 3 (an id with too many failed logins): connect fails as retryable, a background session backs off and connects once the allowance is back', async () => {
    const t = await server({ credentials: { perPrincipal: { failures: 1, per: '3s' } } });
    const [car] = await t.register([{ type: 'device' }]);
    // Someone guesses the device's secret once: its id is refused for a while, whatever the secret.
    assert.equal((await t.api('POST', '/principals/auth', { token: null, body: { id: car!.id, secret: 'a guess' } })).status, 401);

    const first = (await connect({ url: t.restUrl, id: car!.id, secret: car!.secret }).catch((err: ClientError) => err)) as ClientError;
    assert.equal(first.code, 'NITROGEN_ERR_RATE_LIMITED');
    assert.equal(first.details?.returnCode, 3);
    assert.equal(first.retryable, true);

    const refusals: number[] = [];
    const reconnect = { initialDelayMs: 200, maxDelayMs: 1000 };
    const session = await open({ url: t.restUrl, id: car!.id, secret: car!.secret, waitForServer: false, reconnect });
    session.on('offline', (error) => (error as ClientError | null)?.details?.returnCode === 3 && refusals.push(Date.now()));
    session.on('error', (error) => assert.fail(`a refusal to wait out was reported as an error: ${error.code}`));
    await new Promise<void>((resolve) => session.once('online', resolve));
    assert.ok(refusals.length >= 1, 'refused before the allowance was back');
    for (let i = 1; i < refusals.length; i++) assert.ok(refusals[i]! - refusals[i - 1]! >= reconnect.initialDelayMs / 2, 'attempts a backoff apart');
    assert.equal(await metric(t, 'nitrogen_mqtt_connects_refused_total', { reason: 'unavailable' }), refusals.length + 1);
    const id = await session.send({ type: 't', body: { n: 0 } });
    assert.equal((await t.api('GET', `/messages/${id}?from=${car!.id}`)).status, 200);
  });

  it('CONNACK 2 (a client id another principal holds): refused for good, and the holder keeps it', async () => {
    const t = await server();
    const [holder, other] = await t.register([{ type: 'device' }, { type: 'device' }]);
    const owner = await open({ url: t.restUrl, id: holder!.id, secret: holder!.secret, clientId: 'gateway-7' });
    const refused = (await connect({ url: t.restUrl, id: other!.id, secret: other!.secret, clientId: 'gateway-7' }).catch((err: ClientError) => err)) as ClientError;
    assert.equal(refused.code, 'NITROGEN_CLIENT_ID_REJECTED');
    assert.equal(refused.details?.returnCode, 2);
    assert.equal(refused.retryable, false);
    assert.equal(await metric(t, 'nitrogen_mqtt_connects_refused_total', { reason: 'identifier' }), 1);
    assert.equal(owner.online, true);
    await owner.send({ type: 't', body: { n: 0 } });
  });

  it('MQTT over its quota: PUBACKs are held back, not refused; the connection stays up and every message is stored once, in order', async () => {
    const t = await server({ quota: { messages: { perSecond: 20, burst: 5 } } });
    const [car] = await t.register([{ type: 'device' }]);
    const session = await open({ url: t.restUrl, id: car!.id, secret: car!.secret });
    session.on('offline', (error) => error && assert.fail(`the connection went down: ${error.message}`));
    const started = Date.now();
    await sendNumbered(session, 30);
    // 25 messages beyond the burst at 20 a second: the server held the acknowledgements about 1.25 s.
    assert.ok(Date.now() - started >= 1000, `acknowledged after ${Date.now() - started} ms`);
    assert.deepEqual(await storedNumbers(t, car!.id), upTo(30));
  });

  it('REST over its quota: 429 is waited out for its Retry-After; every message is stored once, in order', async () => {
    const t = await server({ quota: { messages: { perSecond: 10, burst: 5 } } });
    const [car] = await t.register([{ type: 'device' }]);
    const session = await open({ url: t.restUrl, id: car!.id, secret: car!.secret, transport: 'rest', restBatch: 5 });
    const waits: ClientError[] = [];
    session.on('offline', (error) => waits.push(error as ClientError));
    session.on('rejected', (id, error) => assert.fail(`${id} rejected: ${error.code}`));
    await sendNumbered(session, 15);
    assert.ok(waits.length >= 1);
    assert.equal(waits[0]!.code, 'NITROGEN_ERR_QUOTA_EXCEEDED');
    assert.ok((waits[0]!.details?.retryAfter as number) >= 1);
    assert.deepEqual(await storedNumbers(t, car!.id), upTo(15));
  });

  it('REST batches over limits.maxBatch, or over a whole quota burst (429 without Retry-After), are halved until they pass, and stay so', async () => {
    const limits: Array<[NitrogenConfigInput, string]> = [
      [{ limits: { maxBatch: 4 } }, 'NITROGEN_ERR_BATCH_TOO_LARGE'],
      [{ quota: { messages: { perSecond: 100_000, burst: 3 } } }, 'NITROGEN_ERR_QUOTA_EXCEEDED'],
    ];
    for (const [config, code] of limits) {
      const t = await server(config);
      const [car] = await t.register([{ type: 'device' }]);
      const session = await open({ url: t.restUrl, id: car!.id, secret: car!.secret, transport: 'rest', restBatch: 10 });
      session.on('rejected', (id, error) => assert.fail(`${id} rejected: ${error.code}`));
      await sendNumbered(session, 30);
      assert.deepEqual(await storedNumbers(t, car!.id), upTo(30));
      // 10, then 5 refused; batches of 2 after that. Sent again at full size, each refusal would come back.
      assert.equal(await metric(t, 'nitrogen_messages_rejected_total', { transport: 'rest', code }), 2, code);
    }
  });

  it('REST batches over the body limit (413, maxBodyBytes) are halved; a message that alone is over it is rejected, the rest delivered', async () => {
    const t = await server({
      plugins: [
        { use: 'mqtt', options: { port: 0 } },
        { use: 'rest', options: { port: 0, maxBodyBytes: 8192 } },
      ],
    });
    const [car] = await t.register([{ type: 'device' }]);
    const session = await open({ url: t.restUrl, id: car!.id, secret: car!.secret, transport: 'rest', restBatch: 10 });
    const rejected: Array<[string, ClientError]> = [];
    session.on('rejected', (id, error) => rejected.push([id, error]));
    const padding = 'x'.repeat(1500);
    await sendNumbered(session, 20, (n) => ({ n, padding }));
    const tooLarge = session.send({ type: 't', body: { n: 20, padding: 'x'.repeat(9000) } });
    const after = session.send({ type: 't', body: { n: 21 } });
    await assert.rejects(
      async () => await tooLarge,
      (err: ClientError) => err.code === 'NITROGEN_ERR_PAYLOAD_TOO_LARGE' && err.details?.limit === 'maxBodyBytes',
    );
    await after;
    assert.deepEqual(
      rejected.map(([id, error]) => [id, error.code]),
      [[tooLarge.id, 'NITROGEN_ERR_PAYLOAD_TOO_LARGE']],
    );
    assert.deepEqual(await storedNumbers(t, car!.id), [...upTo(20), 21]);
  });
});
