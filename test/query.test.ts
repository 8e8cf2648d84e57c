import assert from 'node:assert/strict';
import http from 'node:http';
import { startServer, type TestServer } from './helpers/server.js';

/** Opens an SSE stream; `events` fills as messages arrive. */
function openSse(url: string, token: string): Promise<{ events: any[]; comments: string[]; close(): void; status: number }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' } }, (res) => {
      const stream = { events: [] as any[], comments: [] as string[], close: () => req.destroy(), status: res.statusCode! };
      let buffer = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (block.startsWith(':')) stream.comments.push(block);
          const data = block.split('\n').find((line) => line.startsWith('data: '));
          if (data) stream.events.push(JSON.parse(data.slice(6)));
        }
        if (stream.comments.length === 1 && stream.events.length === 0) resolve(stream);
      });
      if (res.statusCode !== 200) resolve(stream);
    });
    req.on('error', reject);
  });
}

async function until(check: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('querying, permissions and the SSE stream', function () {
  let t: TestServer;
  const tokens: Record<string, string> = {};
  const at = (minute: number) => new Date(Date.UTC(2026, 5, 1, 10, minute)).toISOString();

  before(async () => {
    t = await startServer();
    const made = await t.register([
      { type: 'device', id: 'car-a' },
      { type: 'device', id: 'car-b' },
      { type: 'device', id: 'car-c' },
      { type: 'app', id: 'fleet-app' },
      { type: 'app', id: 'other-app' },
    ]);
    for (const p of made) tokens[p.id] = await t.token(p.id, p.secret);
    // car-a: 10 telemetry at minutes 0..9, tagged alternately; car-b: 3 locations; car-c: 1 telemetry.
    await t.api('POST', '/messages', { token: tokens['car-a'], body: Array.from({ length: 10 }, (_, i) => ({ type: 'telemetry', ts: at(i), tags: [i % 2 ? 'odd' : 'even'], body: { i } })) });
    await t.api('POST', '/messages', { token: tokens['car-b'], body: [0, 1, 2].map((i) => ({ type: 'location', ts: at(20 + i), body: { i } })) });
    await t.api('POST', '/messages', { token: tokens['car-c'], body: { type: 'telemetry', ts: at(30) } });
    await t.grant({ issuedTo: 'fleet-app', principalFor: 'car-a', action: 'view', authorized: true });
    await t.grant({ issuedTo: 'fleet-app', principalFor: 'car-b', action: 'view', authorized: true });
  });

  after(() => t.stop());

  const idsOf = (res: any) => res.body.messages.map((m: any) => `${m.from}:${m.body?.i ?? '-'}`);

  it('filters by from, type, tag, since and until, and orders both ways', async () => {
    assert.deepEqual(idsOf(await t.api('GET', '/messages?from=car-b')), ['car-b:0', 'car-b:1', 'car-b:2']);
    assert.deepEqual(idsOf(await t.api('GET', '/messages?type=location&order=desc')), ['car-b:2', 'car-b:1', 'car-b:0']);
    assert.deepEqual(idsOf(await t.api('GET', '/messages?from=car-a&tag=odd&since=' + at(5))), ['car-a:5', 'car-a:7', 'car-a:9']);
    assert.deepEqual(idsOf(await t.api('GET', `/messages?from=car-a&since=${at(2)}&until=${at(4)}`)), ['car-a:2', 'car-a:3']);
    assert.deepEqual(idsOf(await t.api('GET', '/messages?from=car-b,car-c&type=telemetry')), ['car-c:-']);
    assert.deepEqual(idsOf(await t.api('GET', '/messages?from=car-b&from=car-c&order=desc&limit=2')), ['car-c:-', 'car-b:2']);
  });

  it('pages with a cursor through every match exactly once', async () => {
    const seen: string[] = [];
    let next: string | null = null;
    let pages = 0;
    do {
      const res: any = await t.api('GET', `/messages?order=desc&limit=3${next ? `&cursor=${next}` : ''}`);
      assert.ok(res.body.messages.length <= 3);
      seen.push(...idsOf(res));
      next = res.body.next;
      pages++;
    } while (next);
    assert.equal(seen.length, 14);
    assert.equal(pages, 5);
    assert.deepEqual(seen.slice(0, 2), ['car-c:-', 'car-b:2']);
  });

  it('caps limit at 1,000 and refuses bad parameters with a code', async () => {
    assert.equal((await t.api('GET', '/messages?limit=5000')).status, 200);
    for (const query of ['limit=0', 'limit=abc', 'order=sideways', 'since=notatime', 'from=bad/id', 'cursor=xyz', 'colour=red', 'order=asc&order=desc']) {
      const res = await t.api('GET', `/messages?${query}`);
      assert.equal(res.status, 400, query);
      assert.equal(res.body.error.code, 'NITROGEN_ERR_VALIDATION', query);
    }
  });

  it('shows each caller only what it may view', async () => {
    assert.deepEqual(new Set(idsOf(await t.api('GET', '/messages?limit=100', { token: tokens['car-c'] }))), new Set(['car-c:-']));
    const app = idsOf(await t.api('GET', '/messages?limit=100', { token: tokens['fleet-app'] }));
    assert.equal(app.length, 13);
    assert.ok(!app.includes('car-c:-'));
    assert.deepEqual(idsOf(await t.api('GET', '/messages?from=car-c', { token: tokens['fleet-app'] })), []);
    assert.deepEqual(idsOf(await t.api('GET', '/messages', { token: tokens['other-app'] })), []);
    const one = (await t.api('GET', '/messages?from=car-c&limit=1')).body.messages[0];
    const hidden = await t.api('GET', `/messages/${one.id}`, { token: tokens['fleet-app'] });
    assert.equal(hidden.status, 404, 'a message the caller may not view answers as absent');
    assert.equal(hidden.body.error.code, 'NITROGEN_ERR_NOT_FOUND');
  });

  it('applies permission changes at once, including denials under a wildcard grant', async () => {
    const wildcard = await t.grant({ issuedTo: 'other-app', principalFor: null, action: 'view', authorized: true, priority: 100 });
    const deny = await t.grant({ issuedTo: 'other-app', principalFor: 'car-b', action: 'view', authorized: false, priority: 10 });
    const seen = idsOf(await t.api('GET', '/messages?limit=100', { token: tokens['other-app'] }));
    assert.equal(seen.length, 11);
    assert.ok(!seen.some((id: string) => id.startsWith('car-b')));
    assert.equal((await t.api('DELETE', `/permissions/${deny}`)).status, 204);
    assert.equal(idsOf(await t.api('GET', '/messages?limit=100', { token: tokens['other-app'] })).length, 14);
    assert.equal((await t.api('DELETE', `/permissions/${wildcard}`)).status, 204);
    assert.deepEqual(idsOf(await t.api('GET', '/messages', { token: tokens['other-app'] })), []);
  });

  it('manages permission records with validation and admin checks', async () => {
    const bad = await t.api('POST', '/permissions', { body: { issuedTo: 'fleet-app', principalFor: 'car-a', action: 'fly', authorized: true } });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.details.field, 'action');
    const byDevice = await t.api('POST', '/permissions', { token: tokens['car-a'], body: { issuedTo: 'car-a', principalFor: 'car-b', action: 'view', authorized: true } });
    assert.equal(byDevice.status, 403);
    const mine = await t.api('GET', '/permissions', { token: tokens['fleet-app'] });
    assert.equal(mine.body.permissions.length, 2);
    assert.ok(mine.body.permissions.every((p: any) => p.issuedTo === 'fleet-app'));
    assert.equal((await t.api('DELETE', '/permissions/no-such')).status, 404);
  });

  it('streams new messages over SSE, filtered and permission-checked', async () => {
    const all = await openSse(`${t.restUrl}/messages/stream`, tokens['fleet-app']!);
    const typed = await openSse(`${t.restUrl}/messages/stream?type=location`, tokens['fleet-app']!);
    const outsider = await openSse(`${t.restUrl}/messages/stream`, tokens['other-app']!);
    try {
      assert.equal(all.status, 200);
      assert.deepEqual(all.comments, [': connected']);
      await t.grant({ issuedTo: 'fleet-app', principalFor: 'car-a', action: 'subscribe', authorized: true });
      await t.api('POST', '/messages', { token: tokens['car-a'], body: { type: 'telemetry', body: { live: 1 } } });
      await t.api('POST', '/messages', { token: tokens['car-a'], body: { type: 'location', body: { live: 2 } } });
      await t.api('POST', '/messages', { token: tokens['car-c'], body: { type: 'location', body: { live: 3 } } });
      await until(() => all.events.length >= 2 && typed.events.length >= 1);
      await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(
        all.events.map((m) => m.body.live),
        [1, 2],
      );
      assert.deepEqual(
        typed.events.map((m) => m.body.live),
        [2],
      );
      assert.equal(all.events[0].from, 'car-a');
      assert.equal(outsider.events.length, 0);
    } finally {
      all.close();
      typed.close();
      outsider.close();
    }
    const refused = await openSse(`${t.restUrl}/messages/stream`, 'not-a-token');
    assert.equal(refused.status, 401);
    refused.close();
  });

  // Last: it adds a message the counts above do not expect.
  it('filters by recipient, and lets the recipient read what was addressed to it', async () => {
    const sent = await t.api('POST', '/messages', { body: { type: 'command', to: 'car-c', body: { i: 'cmd' } } });
    assert.equal(sent.status, 201);
    const id = sent.body.messages[0].id;
    assert.deepEqual(
      (await t.api('GET', '/messages?to=car-c')).body.messages.map((m: any) => m.id),
      [id],
    );
    assert.deepEqual(
      (await t.api('GET', '/messages?to=car-c', { token: tokens['car-c'] })).body.messages.map((m: any) => m.id),
      [id],
    );
    assert.equal((await t.api('GET', `/messages/${id}`, { token: tokens['car-c'] })).status, 200);
    assert.deepEqual((await t.api('GET', '/messages?to=car-c', { token: tokens['car-b'] })).body.messages, []);
  });
});
