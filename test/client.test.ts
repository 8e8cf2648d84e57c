import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { connect, type Message, type Session, type Subscription } from '@nitrogen/client';
import { startServer, type TestServer } from './helpers/server.js';

/** A port nothing listens on: one the system just handed out and took back. */
async function closedPort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Resolves with the first `count` values `subscribe` hands to its callback. */
function collect<T>(count: number, subscribe: (push: (value: T) => void) => void): Promise<T[]> {
  return new Promise((resolve) => {
    const seen: T[] = [];
    subscribe((value) => {
      seen.push(value);
      if (seen.length === count) resolve(seen);
    });
  });
}

describe('client: a device and an app', () => {
  let t: TestServer;
  const sessions: Session[] = [];
  const open = async (options: Parameters<typeof connect>[0]) => {
    const s = await connect(options);
    sessions.push(s);
    return s;
  };

  before(async () => {
    t = await startServer();
  });
  afterEach(async () => {
    await Promise.all(sessions.splice(0).map((s) => s.close()));
  });
  after(async () => {
    await t.stop();
  });

  it('a device sends over MQTT; send resolves once the server stored the message', async () => {
    const [car] = await t.register([{ type: 'device' }]);
    const session = await open({ url: t.restUrl, id: car!.id, secret: car!.secret });
    assert.equal(session.online, true);
    const id = await session.send({ type: 'telemetry', body: { speed: 88 }, tags: ['eu'] });
    const res = await t.api('GET', `/messages/${id}?from=${car!.id}`);
    assert.equal(res.status, 200);
    assert.deepEqual(res.body.message.body, { speed: 88 });
    assert.deepEqual(res.body.message.tags, ['eu']);
  });

  it('an app subscribes with filters and a device command handler answers', async () => {
    const [car, other, dash] = await t.register([{ type: 'device' }, { type: 'device' }, { type: 'app' }]);
    await t.grant({ issuedTo: dash!.id, principalFor: car!.id, action: 'send', authorized: true });
    await t.grant({ issuedTo: dash!.id, principalFor: null, action: 'subscribe', authorized: true });
    const device = await open({ url: t.restUrl, id: car!.id, secret: car!.secret });
    const noise = await open({ url: t.restUrl, id: other!.id, secret: other!.secret });
    const app = await open({ url: t.restUrl, id: dash!.id, secret: dash!.secret });

    const handled = await device.onCommand('unlock', (command) => ({ unlocked: (command.body as { door: string }).door }));
    await handled.ready;
    let subscription!: Subscription;
    const received = collect<Message>(2, (push) => (subscription = app.onMessage({ from: car!.id, type: 'telemetry', tag: 'eu' }, push)));
    await subscription.ready;
    await noise.send({ type: 'telemetry', body: { n: 0 }, tags: ['eu'] });
    await device.send({ type: 'telemetry', body: { n: 1 } }); // no tag
    await device.send({ type: 'location', body: { n: 2 }, tags: ['eu'] });
    await device.send({ type: 'telemetry', body: { n: 3 }, tags: ['eu'] });
    await device.send({ type: 'telemetry', body: { n: 4 }, tags: ['eu', 'x'] });
    assert.deepEqual(
      (await received).map((m) => (m.body as { n: number }).n),
      [3, 4],
    );

    const reply = await app.command(car!.id, 'unlock', { door: 'driver' });
    assert.deepEqual(reply.body, { unlocked: 'driver' });
    assert.equal(reply.from, car!.id);
    assert.equal(reply.type, 'unlock-result');
    assert.deepEqual(reply.responseTo?.length, 1);
  });

  it('a command whose handler throws is answered with an error reply; a command nobody answers times out', async () => {
    const [car, dash] = await t.register([{ type: 'device' }, { type: 'app' }]);
    await t.grant({ issuedTo: dash!.id, principalFor: car!.id, action: 'send', authorized: true });
    const device = await open({ url: t.restUrl, id: car!.id, secret: car!.secret });
    const app = await open({ url: t.restUrl, id: dash!.id, secret: dash!.secret, commandTimeoutMs: 300 });
    await (
      await device.onCommand('reboot', () => {
        throw new Error('not while driving');
      })
    ).ready;
    const failed = await app.command(car!.id, 'reboot').catch((err) => err);
    assert.equal(failed.code, 'NITROGEN_CLIENT_COMMAND_FAILED');
    assert.match(failed.message, /not while driving/);
    assert.deepEqual(failed.details.reply.tags, ['error']);
    const silent = await app.command(car!.id, 'honk').catch((err) => err);
    assert.equal(silent.code, 'NITROGEN_CLIENT_TIMEOUT');
    assert.equal(silent.details.limit, 'commandTimeoutMs');
  });

  it('a subscription the server refuses rejects its ready with the server code', async () => {
    const [car, nosy] = await t.register([{ type: 'device' }, { type: 'app' }]);
    const app = await open({ url: t.restUrl, id: nosy!.id, secret: nosy!.secret });
    const overMqtt = await app.onMessage({ to: car!.id }, () => {}).ready.catch((err) => err);
    assert.equal(overMqtt.code, 'NITROGEN_ERR_FORBIDDEN');
    assert.deepEqual(overMqtt.details.topics, [`devices/${car!.id}/commands/#`]);
  });

  it('queries stored messages page by page', async () => {
    const [car] = await t.register([{ type: 'device' }]);
    const device = await open({ url: t.restUrl, id: car!.id, secret: car!.secret });
    for (let n = 0; n < 5; n++) device.send({ type: 'telemetry', ts: new Date(Date.UTC(2026, 0, 1, 0, 0, n)), body: { n } });
    await device.drained();
    const page = await device.query({ from: car!.id }, { limit: 2, order: 'desc' });
    assert.deepEqual(
      page.messages.map((m) => (m.body as { n: number }).n),
      [4, 3],
    );
    const all: number[] = [];
    for await (const m of device.messages<{ n: number }>({ from: car!.id, since: '2026-01-01T00:00:01Z' }, { limit: 2 })) all.push(m.body.n);
    assert.deepEqual(all, [1, 2, 3, 4]);
  });

  it('refuses at once what the server would refuse, naming the field or the limit', async () => {
    const [car] = await t.register([{ type: 'device' }]);
    const device = await open({ url: t.restUrl, id: car!.id, secret: car!.secret, maxMessageBytes: 1024 });
    const fault = (f: () => unknown) => {
      try {
        f();
        return null;
      } catch (err) {
        return { code: (err as { code: string }).code, details: (err as { details: unknown }).details };
      }
    };
    assert.deepEqual(
      fault(() => device.send({ type: 'no spaces' })),
      { code: 'NITROGEN_ERR_VALIDATION', details: { field: 'type' } },
    );
    assert.deepEqual(
      fault(() => device.send({ type: 't', from: 'someone' } as never)),
      { code: 'NITROGEN_ERR_VALIDATION', details: { field: 'from' } },
    );
    assert.deepEqual(
      fault(() => device.send({ type: 't', tags: ['a,b'] })),
      { code: 'NITROGEN_ERR_VALIDATION', details: { field: 'tags' } },
    );
    assert.deepEqual(
      fault(() => device.send({ type: 't', body: 'x'.repeat(2000) })),
      { code: 'NITROGEN_ERR_PAYLOAD_TOO_LARGE', details: { limit: 'maxMessageBytes' } },
    );
    assert.equal(device.queued, 0);
  });

  it('connect fails with the server code for bad credentials, and with UNREACHABLE when nothing listens', async () => {
    const [car] = await t.register([{ type: 'device' }]);
    const bad = await connect({ url: t.restUrl, id: car!.id, secret: 'wrong' }).catch((err) => err);
    assert.equal(bad.code, 'NITROGEN_ERR_BAD_CREDENTIALS');
    assert.equal(bad.details.returnCode, 4);
    const badRest = await connect({ url: t.restUrl, id: car!.id, secret: 'wrong', transport: 'rest' }).catch((err) => err);
    assert.equal(badRest.code, 'NITROGEN_ERR_BAD_CREDENTIALS');
    assert.equal(badRest.status, 401);
    const port = await closedPort();
    const nowhere = await connect({ url: `http://127.0.0.1:${port}/api/v1`, mqtt: `mqtt://127.0.0.1:${port}`, id: car!.id, secret: car!.secret }).catch((err) => err);
    assert.equal(nowhere.code, 'NITROGEN_CLIENT_UNREACHABLE');
  });
});
