import assert from 'node:assert/strict';
import { connect, type ClientError, type Message, type Session } from '@nitrogen/client';
import { ADMIN_SECRET, startServer, type TestServer } from './helpers/server.js';

/** A function that counts its calls, and resolves `reached(n)` once it has been called `n` times. */
function counted<A extends unknown[], R>(f: (...args: A) => R) {
  let calls = 0;
  const waiting: Array<{ n: number; resolve(): void }> = [];
  const wrapped = (...args: A): R => {
    calls++;
    for (const w of waiting.filter((w) => calls >= w.n)) w.resolve();
    return f(...args);
  };
  return { wrapped, reached: (n: number) => new Promise<void>((resolve) => (calls >= n ? resolve() : waiting.push({ n, resolve }))) };
}

describe('client: tokens, impersonation, REST transport and refused messages', function () {
  this.timeout(30_000);
  let t: TestServer;
  const sessions: Session[] = [];
  const open = async (options: Parameters<typeof connect>[0]) => {
    const s = await connect(options);
    sessions.push(s);
    return s;
  };

  before(async () => {
    // Tokens of two seconds: renewal happens within the test's time.
    t = await startServer({ identity: { use: 'default', options: { tokenTtl: '2s', impersonationTtl: '2s' } } });
  });
  // The admin's token lasts two seconds too: a fresh one for each request of the test's own.
  const api: TestServer['api'] = async (...args) => {
    t.adminToken = await t.token('admin', ADMIN_SECRET);
    return t.api(...args);
  };
  beforeEach(async () => {
    t.adminToken = await t.token('admin', ADMIN_SECRET);
  });
  afterEach(async () => {
    await Promise.all(sessions.splice(0).map((s) => s.close()));
  });
  after(async () => {
    await t.stop();
  });

  it('impersonates a device over MQTT and renews its token before it expires, without losing the connection', async () => {
    const [car, service] = await t.register([{ type: 'device' }, { type: 'app' }]);
    await t.grant({ issuedTo: service!.id, principalFor: car!.id, action: 'impersonate', authorized: true });
    const app = await open({ url: t.restUrl, id: service!.id, secret: service!.secret });
    const renewals = counted(app.impersonationToken.bind(app));
    app.impersonationToken = renewals.wrapped;
    const asCar = await app.impersonate(car!.id);
    sessions.push(asCar);
    const cut: Error[] = [];
    asCar.on('offline', (error) => error && cut.push(error));
    let n = 0;
    const sending = setInterval(() => void asCar.send({ type: 'telemetry', body: { n: n++ } }), 50);
    // Each renewal swaps the connection for one with the new token; three take about three seconds.
    await renewals.reached(4);
    clearInterval(sending);
    await asCar.drained();
    assert.deepEqual(cut, [], 'the server never cut the connection: tokens were swapped before they expired');
    const stored = await api('GET', `/messages?from=${car!.id}&limit=1000`);
    assert.equal(stored.body.messages.length, n);
  });

  it('over REST and SSE (the browser transport): sends in batches, subscribes, and keeps streaming across token renewals', async () => {
    const [car, dash] = await t.register([{ type: 'device' }, { type: 'app' }]);
    await t.grant({ issuedTo: dash!.id, principalFor: car!.id, action: 'subscribe', authorized: true });
    const device = await open({ url: t.restUrl, id: car!.id, secret: car!.secret, transport: 'rest' });
    const renewals = counted(() => t.token(dash!.id, dash!.secret));
    const app = await open({ url: t.restUrl, id: dash!.id, accessToken: await t.token(dash!.id, dash!.secret), renewToken: renewals.wrapped, transport: 'rest' });
    const seen = new Set<number>();
    const arrivals: Array<{ n: number; resolve(): void }> = [];
    const arrived = (n: number) => new Promise<void>((resolve) => (seen.has(n) ? resolve() : arrivals.push({ n, resolve })));
    const sub = app.onMessage({ from: car!.id }, (m: Message<{ n: number }>) => {
      seen.add(m.body.n);
      for (const a of arrivals.filter((a) => a.n === m.body.n)) a.resolve();
    });
    await sub.ready;
    // A burst goes as batches of POST /messages, in order.
    await Promise.all(Array.from({ length: 250 }, (_, n) => device.send({ type: 'telemetry', body: { n } })));
    await arrived(249);
    assert.equal(seen.size, 250);
    // The stream ends when its token expires and is opened again with a new one: twice here.
    await renewals.reached(2);
    // Sent until one arrives: a message committed while the stream was being reopened is not replayed.
    let n = 1000;
    const sending = setInterval(() => void device.send({ type: 'telemetry', body: { n: n++ } }), 100);
    await arrived(1001);
    clearInterval(sending);
  });

  it('a queued message the server refuses over MQTT is rejected with its reason; the ones behind it are delivered', async () => {
    const [car, stranger] = await t.register([{ type: 'device' }, { type: 'device' }]);
    const device = await open({ url: t.restUrl, id: car!.id, secret: car!.secret });
    const rejected: Array<{ id: string; code: string }> = [];
    device.on('rejected', (id, error: ClientError) => rejected.push({ id, code: error.code }));
    // Valid to the client, refused by the server: car may not send to stranger. MQTT has no
    // negative PUBACK; the server closes the connection, and the client asks REST why.
    const poison = device.send({ type: 'command', to: stranger!.id, body: {} });
    const after = [device.send({ type: 'telemetry', body: { n: 1 } }), device.send({ type: 'telemetry', body: { n: 2 } })];
    const failure = (await poison.then(
      () => null,
      (err: Error) => err,
    )) as ClientError | null;
    assert.equal(failure?.code, 'NITROGEN_ERR_FORBIDDEN');
    assert.equal(failure?.status, 403);
    assert.deepEqual(rejected, [{ id: poison.id, code: 'NITROGEN_ERR_FORBIDDEN' }]);
    await Promise.all(after);
    const stored = await api('GET', `/messages?from=${car!.id}`);
    assert.deepEqual(
      stored.body.messages.map((x: Message<{ n: number }>) => x.body.n),
      [1, 2],
    );
  });
});
