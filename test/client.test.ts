import assert from 'node:assert/strict';
import { connect, type Message, type Session } from '@nitrogen/client';
import { startServer, type TestServer } from './helpers/server.js';

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
    const received = collect<Message>(2, (push) => app.onMessage({ from: car!.id, type: 'telemetry', tag: 'eu' }, push));
    await new Promise((r) => setTimeout(r, 0));
    await noise.send({ type: 'telemetry', body: { n: 0 }, tags: ['eu'] });
    await device.send({ type: 'telemetry', body: { n: 1 } }); // no tag
    await device.send({ type: 'location', body: { n: 2 }, tags: ['eu'] });
    await device.send({ type: 'telemetry', body: { n: 3 }, tags: ['eu'] });
    await device.send({ type: 'telemetry', body: { n: 4 }, tags: ['eu', 'x'] });
    assert.deepEqual((await received).map((m) => (m.body as { n: number }).n), [3, 4]);

    const reply = await app.command(car!.id, 'unlock', { door: 'driver' });
    assert.deepEqual(reply.body, { unlocked: 'driver' });
    assert.equal(reply.from, car!.id);
    assert.equal(reply.type, 'unlock-result');
  });
});
