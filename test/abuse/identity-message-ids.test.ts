// Issue: message ids could be claimed ahead. Server ids were the time, a counter and a fixed
// per-process node id, so from one observed id another principal could store messages under the
// ids a device would be given next, and GET /messages/:id (first stored wins) then answered
// with the forgery. Server ids now end in 64 random bits; (from, id) can also be asked for.
import assert from 'node:assert/strict';
import { assertServesNormalDevice } from '../helpers/abuse.js';
import { startServer, type TestServer } from '../helpers/server.js';

/**
 * What an attacker who saw `observed` would claim: for every millisecond of the next `window`,
 * the first id of that millisecond, with the rest of `observed` after the time and counter.
 */
function predictedIds(observed: string, from: number, window: number): string[] {
  const tail = observed.slice(16);
  return Array.from({ length: window }, (_, i) => (from + i).toString(16).padStart(12, '0') + '0000' + tail);
}

describe('abuse: message ids cannot be claimed ahead', () => {
  let t: TestServer;
  before(async () => (t = await startServer()));
  after(() => t.stop());

  it("gives a device ids no one could name first, so reading one by id returns the device's message", async () => {
    const [car, mallory] = await t.register([
      { type: 'device', id: 'id-car' },
      { type: 'device', id: 'id-mallory' },
    ]);
    const carToken = await t.token(car!.id, car!.secret);
    const malloryToken = await t.token(mallory!.id, mallory!.secret);
    const send = (token: string, body: unknown) => t.api('POST', '/messages', { token, body });

    const seen = (await send(malloryToken, { type: 'telemetry', body: { bait: true } })).body.messages[0].id as string;
    const start = Date.now();
    for (let offset = 0; offset < 2000; offset += 1000) {
      const claims = predictedIds(seen, start + offset, 1000).map((id) => ({ id, type: 'telemetry', body: { forged: true } }));
      assert.equal((await send(malloryToken, claims)).status, 201);
    }
    const genuine = (await send(carToken, { type: 'telemetry', body: { speed: 88 } })).body.messages[0];
    assert.ok(Date.parse(genuine.ts) < start + 2000, 'the device sent inside the claimed window');

    // The admin may view every sender: exactly the reader a forgery stored first would fool.
    const read = await t.api('GET', `/messages/${genuine.id}`);
    assert.equal(read.status, 200);
    assert.deepEqual(read.body.message, genuine);
    await assertServesNormalDevice(t);
  });

  it('answers for exactly the sender named with ?from= when a client-chosen id is shared', async () => {
    const [car, mallory] = await t.register([
      { type: 'device', id: 'from-car' },
      { type: 'device', id: 'from-mallory' },
    ]);
    const carToken = await t.token(car!.id, car!.secret);
    const malloryToken = await t.token(mallory!.id, mallory!.secret);
    await t.api('POST', '/messages', { token: malloryToken, body: { id: 'reading-1', type: 'telemetry', body: { forged: true } } });
    await t.api('POST', '/messages', { token: carToken, body: { id: 'reading-1', type: 'telemetry', body: { speed: 50 } } });

    const named = await t.api('GET', `/messages/reading-1?from=${car!.id}`);
    assert.equal(named.status, 200);
    assert.equal(named.body.message.from, car!.id);
    assert.deepEqual(named.body.message.body, { speed: 50 });
    assert.equal((await t.api('GET', '/messages/reading-1?from=nobody')).status, 404);
    // The device itself always gets its own.
    assert.equal((await t.api('GET', '/messages/reading-1', { token: carToken })).body.message.from, car!.id);
    // Naming a sender the caller may not view tells nothing.
    assert.equal((await t.api('GET', `/messages/reading-1?from=${mallory!.id}`, { token: carToken })).status, 404);
    await assertServesNormalDevice(t);
  });
});
