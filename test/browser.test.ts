// A real browser (Debian's headless Chromium, driven by playwright-core) on a page of another
// origin: it asks for a stream ticket with its token (CORS preflight and all), opens an
// EventSource with the ticket, which sends no header, and receives what a device publishes.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startServer, type TestServer } from './helpers/server.js';
import { tempDir } from './helpers/temp.js';

const CHROMIUM = '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** The page: asks for a ticket with the token it is given, then listens. */
const PAGE = `<!doctype html><meta charset="utf-8"><title>stream</title><script>
window.received = [];
window.listen = async (rest, token, type) => {
  const res = await fetch(rest + '/messages/stream/tickets', { method: 'POST', headers: { authorization: 'Bearer ' + token } });
  const { ticket } = await res.json();
  window.ticket = ticket;
  const source = new EventSource(rest + '/messages/stream?type=' + type + '&ticket=' + encodeURIComponent(ticket));
  source.addEventListener('message', (event) => window.received.push(JSON.parse(event.data)));
  await new Promise((resolve, reject) => { source.onopen = resolve; source.onerror = reject; });
};
</script>`;

describe('Browser: EventSource with a stream ticket, across origins', function () {
  this.timeout(60_000);
  const present = existsSync(CHROMIUM);
  if (!present && process.env.CI !== 'true') {
    it.skip(`needs Debian's chromium at ${CHROMIUM} (apt-get install chromium); skipped outside CI`);
    return;
  }

  let page: Server;
  let t: TestServer;
  const profile = tempDir('nitrogen-chromium-');

  before(async () => {
    assert.ok(present, `CI must install chromium (${CHROMIUM}): .ci/run does`);
    page = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(PAGE));
    await new Promise<void>((resolve) => page.listen(0, '127.0.0.1', resolve));
    const origin = `http://127.0.0.1:${(page.address() as AddressInfo).port}`;
    t = await startServer({
      plugins: [
        { use: 'mqtt', options: { port: 0 } },
        { use: 'rest', options: { port: 0, corsOrigins: [origin] } },
      ],
    });
  });
  after(async () => {
    await t?.stop();
    page?.close();
    profile.remove();
  });

  it('receives a stream in a real browser, the long-lived token never in a URL', async () => {
    const { chromium } = await import('playwright-core');
    const [device, app] = await t.register([{ type: 'device' }, { type: 'app' }]);
    await t.grant({ issuedTo: app!.id, principalFor: device!.id, action: 'subscribe', authorized: true });
    const appToken = await t.token(app!.id, app!.secret);
    const context = await chromium.launchPersistentContext(profile.path, { executablePath: CHROMIUM, headless: true, args: FLAGS });
    try {
      const tab = context.pages()[0] ?? (await context.newPage());
      const requested: string[] = [];
      tab.on('request', (request) => requested.push(request.url()));
      await tab.goto(`http://127.0.0.1:${(page.address() as AddressInfo).port}/`);
      await tab.evaluate(([rest, token]) => (globalThis as unknown as { listen(r: string, t: string, type: string): Promise<void> }).listen(rest!, token!, 'browser-test'), [t.restUrl, appToken]);
      const sent = await t.api('POST', '/messages', { token: await t.token(device!.id, device!.secret), body: { type: 'browser-test', body: { hello: 'browser' } } });
      assert.equal(sent.status, 201);
      await tab.waitForFunction(() => (globalThis as unknown as { received: unknown[] }).received.length > 0);
      const [received] = await tab.evaluate(() => (globalThis as unknown as { received: Array<{ from: string; body: unknown }> }).received);
      assert.equal(received!.from, device!.id);
      assert.deepEqual(received!.body, { hello: 'browser' });
      assert.ok(
        requested.every((url) => !url.includes(appToken)),
        'the access token appeared in a URL',
      );

      // A ticket opens one stream: used again, it opens nothing.
      const ticket = await tab.evaluate(() => (globalThis as unknown as { ticket: string }).ticket);
      const again = await fetch(`${t.restUrl}/messages/stream?ticket=${encodeURIComponent(ticket)}`);
      assert.equal(again.status, 401);
    } finally {
      await context.close();
    }
  });

  it('gives no CORS headers to an origin not configured', async () => {
    const res = await fetch(`${t.restUrl}/headwaiter`, { headers: { origin: 'http://evil.example' } });
    assert.equal(res.headers.get('access-control-allow-origin'), null);
    const preflight = await fetch(`${t.restUrl}/messages`, { method: 'OPTIONS', headers: { origin: 'http://evil.example', 'access-control-request-method': 'POST' } });
    assert.equal(preflight.headers.get('access-control-allow-origin'), null);
  });
});
