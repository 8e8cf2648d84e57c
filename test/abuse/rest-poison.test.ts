// Issue item 2: a device published 50,000 nested arrays (MQTT QoS 1); it was acknowledged and
// stored, and from then on every GET /messages page holding it answered a plain-text 500 (a stack
// overflow encoding the response), also after a restart. Over REST, bodies nested 5,000+ levels
// answered 500 instead of 400. Every ingress path now refuses nesting beyond limits.maxJsonDepth,
// and a message an earlier version stored is served with a placeholder body instead of failing.
import assert from 'node:assert/strict';
import { bodyMessage, UNENCODABLE_BODY } from '../../core/message.js';
import { Tokens } from '../../core/tokens.js';
import { assertServesNormalDevice } from '../helpers/abuse.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { tempDir } from '../helpers/temp.js';
import { nested } from './rest-support.js';

const DEPTH_LIMIT = 64; // limits.maxJsonDepth's default

function assertDepthRefusal(res: { status: number; body: any }, what: string): void {
  assert.equal(res.status, 400, `${what} answered ${res.status}: ${JSON.stringify(res.body).slice(0, 200)}`);
  assert.equal(res.body.error.code, 'NITROGEN_ERR_VALIDATION', what);
  assert.equal(res.body.error.details.limit, 'limits.maxJsonDepth', what);
}

describe('abuse: JSON nested past limits.maxJsonDepth (REST and MQTT)', () => {
  let t: TestServer;
  let device: { id: string; secret: string };
  let deviceToken: string;

  before(async () => {
    t = await startServer();
    device = (await t.register([{ type: 'device', id: 'poison-device' }]))[0]!;
    deviceToken = await t.token(device!.id, device!.secret);
  });
  after(() => t.stop());

  it('closes an MQTT publisher of 50,000 nested arrays before its PUBACK, stores nothing, and queries keep answering', async () => {
    for (const [topic, payload] of [
      [`devices/${device!.id}/messages/telemetry`, nested(50_000)],
      [`devices/${device!.id}/messages`, `{"type":"telemetry","body":${nested(50_000)}}`],
    ] as const) {
      const client = await t.mqtt(device!.id, device!.secret);
      const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
      const acknowledged = client.publishAsync(topic, payload, { qos: 1 }).then(
        () => 'acknowledged',
        () => 'failed',
      );
      // MQTT 3.1.1 has no negative PUBACK: a refused publish closes the connection [MQTT-3.3.5-2].
      assert.equal(await Promise.race([closed.then(() => 'closed'), acknowledged]), 'closed', `${topic}: the publish was acknowledged`);
      await client.endAsync(true);
    }
    const page = await t.api('GET', `/messages?from=${device!.id}`, { token: deviceToken });
    assert.equal(page.status, 200);
    assert.deepEqual(page.body.messages, [], 'nothing of a refused publish is stored');
    await assertServesNormalDevice(t);
  });

  it('answers 400 naming the limit for REST bodies nested past it on every JSON route, and 201 at the limit', async () => {
    for (const depth of [DEPTH_LIMIT + 1, 5_000, 50_000]) {
      assertDepthRefusal(await t.api('POST', '/messages', { token: deviceToken, raw: `{"type":"telemetry","body":${nested(depth)}}` }), `POST /messages, ${depth} deep`);
      assertDepthRefusal(await t.api('POST', '/principals', { raw: `{"type":"device","tags":${nested(depth)}}` }), `POST /principals, ${depth} deep`);
      assertDepthRefusal(await t.api('POST', '/permissions', { raw: `{"authorized":true,"action":${nested(depth)}}` }), `POST /permissions, ${depth} deep`);
    }
    // The login route reads at most maxAuthBodyBytes (4 KiB): deep, but small.
    assertDepthRefusal(await t.api('POST', '/principals/auth', { token: null, raw: `{"id":"a","secret":${nested(DEPTH_LIMIT + 1)}}` }), 'POST /principals/auth');

    // The payload counts: the envelope object is one level, so its body may nest 63 deep.
    const atLimit = await t.api('POST', '/messages', { token: deviceToken, raw: `{"type":"telemetry","body":${nested(DEPTH_LIMIT - 1)}}` });
    assert.equal(atLimit.status, 201, JSON.stringify(atLimit.body).slice(0, 200));
    const readBack = await t.api('GET', `/messages/${atLimit.body.messages[0].id}`, { token: deviceToken });
    assert.equal(JSON.stringify(readBack.body.message.body), nested(DEPTH_LIMIT - 1));
    // Brackets inside strings do not nest.
    const inString = await t.api('POST', '/messages', { token: deviceToken, body: { type: 'telemetry', body: { text: nested(5_000), quoted: '\\"[[[' } } });
    assert.equal(inString.status, 201, JSON.stringify(inString.body).slice(0, 200));
    await assertServesNormalDevice(t);
  });

  it('serves a message an earlier version stored nested 50,000 deep with a placeholder body, also after a restart', async () => {
    const dir = tempDir();
    let server = await startServer({}, dir.path);
    try {
      const [sender] = await server.register([{ type: 'device', id: 'old-poison' }]);
      // What the MQTT path of an earlier version stored: the payload text taken as the body as is.
      const poison = bodyMessage({ sender: sender!.id, type: 'telemetry', now: Date.now(), bodyJson: nested(50_000), body: JSON.parse(nested(50_000)) });
      await server.server.container.resolve(Tokens.Store).append([poison]);
      const fine = await server.api('POST', '/messages', { token: await server.token(sender!.id, sender!.secret), body: { type: 'telemetry', body: { ok: true } } });
      assert.equal(fine.status, 201);

      for (let run = 0; run < 2; run++) {
        const page = await server.api('GET', `/messages?from=${sender!.id}`);
        assert.equal(page.status, 200, `run ${run}: a page holding the old message answered ${page.status}`);
        assert.deepEqual(
          page.body.messages.map((m: { id: string }) => m.id),
          [poison.id, fine.body.messages[0].id],
        );
        assert.deepEqual(page.body.messages[0].body, UNENCODABLE_BODY);
        assert.deepEqual(page.body.messages[1].body, { ok: true });
        const one = await server.api('GET', `/messages/${poison.id}`);
        assert.equal(one.status, 200);
        assert.deepEqual({ ...one.body.message, body: null }, { id: poison.id, type: 'telemetry', from: sender!.id, ts: poison.ts, body: null });
        assert.deepEqual(one.body.message.body, UNENCODABLE_BODY);
        await assertServesNormalDevice(server);
        if (run === 0) {
          await server.stop();
          server = await startServer({}, dir.path);
        }
      }
    } finally {
      await server.stop();
      dir.remove();
    }
  });
});
