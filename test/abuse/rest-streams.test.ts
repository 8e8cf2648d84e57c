// Issue item 11: there was no cap on SSE streams; one token opened 1,000 of them, each holding a
// connection, a bus listener and up to 4 MiB of buffered events. Now streams are capped per
// principal (429 NITROGEN_ERR_QUOTA_EXCEEDED) and in all (503 NITROGEN_ERR_OVERLOADED).
import assert from 'node:assert/strict';
import http from 'node:http';
import { assertServesNormalDevice } from '../helpers/abuse.js';
import type { TestServer } from '../helpers/server.js';
import { startLoggedServer } from './rest-support.js';

interface Opened {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** The error body of a refusal. */
  body?: any;
  close(): void;
}

/** Opens `GET /messages/stream`; resolves once it is subscribed (`: connected`), or with the refusal. */
function openStream(t: TestServer, token: string): Promise<Opened> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${t.restUrl}/messages/stream`, { headers: { authorization: `Bearer ${token}` }, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      const opened = { status: res.statusCode!, headers: res.headers, close: () => req.destroy() };
      res.on('data', (chunk: string) => {
        text += chunk;
        if (res.statusCode === 200 && text.startsWith(': connected\n\n')) resolve(opened);
      });
      res.on('end', () => resolve({ ...opened, body: JSON.parse(text) }));
    });
    req.on('error', reject);
  });
}

async function openStreams(t: TestServer): Promise<number> {
  const metrics = await t.api('GET', '/metrics', { token: null });
  return Number(/^nitrogen_rest_streams (\d+)$/m.exec(metrics.body)?.[1]);
}

describe('abuse: SSE streams per principal and in all', () => {
  it('refuses a principal its 11th stream with 429 and the server its maxStreams+1th with 503, and frees slots as streams close', async () => {
    const { t } = await startLoggedServer({ maxStreams: 12 });
    const streams: Opened[] = [];
    try {
      const [app, other] = await t.register([
        { type: 'app', id: 'greedy-app' },
        { type: 'app', id: 'other-app' },
      ]);
      const appToken = await t.token(app!.id, app!.secret);
      const otherToken = await t.token(other!.id, other!.secret);

      // The attack, with one token: only maxStreamsPerPrincipal (default 10) open.
      for (let i = 0; i < 10; i++) {
        const stream = await openStream(t, appToken);
        assert.equal(stream.status, 200, `stream ${i + 1}`);
        streams.push(stream);
      }
      for (let i = 0; i < 20; i++) {
        const refused = await openStream(t, appToken);
        assert.equal(refused.status, 429);
        assert.equal(refused.body.error.code, 'NITROGEN_ERR_QUOTA_EXCEEDED');
        assert.equal(refused.body.error.details.limit, 'maxStreamsPerPrincipal');
      }
      assert.equal(await openStreams(t), 10);

      // Another principal takes the last two of maxStreams (12); then the server is full.
      for (let i = 0; i < 2; i++) streams.push(await openStream(t, otherToken));
      assert.deepEqual(
        streams.map((s) => s.status),
        Array(12).fill(200),
      );
      const full = await openStream(t, t.adminToken);
      assert.equal(full.status, 503);
      assert.equal(full.body.error.code, 'NITROGEN_ERR_OVERLOADED');
      assert.equal(full.body.error.details.limit, 'maxStreams');
      assert.equal(full.headers['retry-after'], '5');

      // A closed stream frees its slot once the server has seen it close.
      streams.shift()!.close();
      while ((await openStreams(t)) !== 11);
      const again = await openStream(t, appToken);
      assert.equal(again.status, 200);
      streams.push(again);
    } finally {
      for (const stream of streams) stream.close();
    }
    try {
      while ((await openStreams(t)) !== 0);
      await assertServesNormalDevice(t);
    } finally {
      await t.stop();
    }
  });
});
