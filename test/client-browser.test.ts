import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { startServer, type TestServer } from './helpers/server.js';
import { tempDir } from './helpers/temp.js';

const CHROMIUM = '/usr/bin/chromium';
/** The browser build (`npm run build` makes it with esbuild). */
const BUNDLE = fileURLToPath(new URL('../../client/dist/browser/nitrogen-client.js', import.meta.url));
/** Flags that work on these machines: no sandbox (root), no GPU, nothing fetched in the background. */
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/**
 * The browser build in headless Chromium: the page is served from the server's own origin (a
 * route of the test, as a front door would serve an app beside the API), imports the bundle
 * with <script type="module">, and runs a device and an app over REST and SSE.
 */
describe('client: the browser build in headless Chromium', function () {
  this.timeout(60_000);
  let t: TestServer;
  let context: BrowserContext;
  let page: Page;
  const profile = tempDir('nitrogen-chromium-');

  before(async function () {
    if (!existsSync(CHROMIUM)) {
      // CI installs it (.ci/run); elsewhere the test says why it did not run.
      if (process.env.CI === 'true') throw new Error(`${CHROMIUM} is missing: CI must install it (apt-get install -y chromium)`);
      console.log(`      skipped: ${CHROMIUM} is not installed (apt-get install -y chromium)`);
      this.skip();
    }
    t = await startServer();
    context = await chromium.launchPersistentContext(profile.path, { executablePath: CHROMIUM, headless: true, args: FLAGS });
    const origin = t.origin;
    await context.route(`${origin}/client-test/**`, (route) => {
      const path = new URL(route.request().url()).pathname;
      if (path === '/client-test/nitrogen-client.js') return route.fulfill({ contentType: 'text/javascript', body: readFileSync(BUNDLE, 'utf8') });
      return route.fulfill({ contentType: 'text/html', body: '<!doctype html><script type="module">import * as nitrogen from "/client-test/nitrogen-client.js"; window.nitrogen = nitrogen; window.ready = true;</script>' });
    });
    page = await context.newPage();
    page.on('pageerror', (err) => console.error('page error:', err));
    await page.goto(`${origin}/client-test/index.html`);
    await page.waitForFunction(() => (globalThis as unknown as { ready?: boolean }).ready === true);
  });

  after(async () => {
    await context?.close();
    await t?.stop();
    profile.remove();
  });

  it('holds nothing of Node: no MQTT, no queue file, the same API over REST and SSE', async () => {
    const bundle = readFileSync(BUNDLE, 'utf8');
    assert.ok(!/node:|require\(/.test(bundle), 'the bundle imports nothing of Node');
    const refused = await page.evaluate(async (url) => {
      const { connect } = (globalThis as any).nitrogen;
      try {
        await connect({ url, id: 'x', secret: 'y', queue: { file: 'q' } });
        return null;
      } catch (err) {
        return (err as { code: string }).code;
      }
    }, t.restUrl);
    assert.equal(refused, 'NITROGEN_CLIENT_BAD_OPTIONS');
  });

  it('a device sends, an app subscribes with filters over SSE, and a command gets its reply', async () => {
    const [car, dash] = await t.register([{ type: 'device' }, { type: 'app' }]);
    await t.grant({ issuedTo: dash!.id, principalFor: car!.id, action: 'send', authorized: true });
    await t.grant({ issuedTo: dash!.id, principalFor: car!.id, action: 'subscribe', authorized: true });
    const result = await page.evaluate(
      async ({ url, car, dash }) => {
        const { connect } = (globalThis as any).nitrogen;
        const device = await connect({ url, id: car.id, secret: car.secret });
        const app = await connect({ url, id: dash.id, secret: dash.secret });
        const handler = await device.onCommand('unlock', (command: { body: { door: string } }) => ({ unlocked: command.body.door }));
        await handler.ready;
        const seen: number[] = [];
        let done!: () => void;
        const twoSeen = new Promise<void>((resolve) => (done = resolve));
        const subscription = app.onMessage({ from: car.id, type: 'telemetry', tag: 'eu' }, (m: { body: { n: number } }) => {
          seen.push(m.body.n);
          if (seen.length === 2) done();
        });
        await subscription.ready;
        const ids = [
          await device.send({ type: 'telemetry', body: { n: 1 } }),
          await device.send({ type: 'location', body: { n: 2 }, tags: ['eu'] }),
          await device.send({ type: 'telemetry', body: { n: 3 }, tags: ['eu'] }),
          await device.send({ type: 'telemetry', body: { n: 4 }, tags: ['eu'] }),
        ];
        await twoSeen;
        const reply = await app.command(car.id, 'unlock', { door: 'driver' });
        const page = await device.query({ from: car.id, type: 'telemetry' });
        await Promise.all([device.close(), app.close()]);
        return { seen, ids, reply: { from: reply.from, type: reply.type, body: reply.body }, stored: page.messages.map((m: { body: { n: number } }) => m.body.n), sessionQueue: device.queued };
      },
      { url: t.restUrl, car: car!, dash: dash! },
    );
    assert.deepEqual(result.seen, [3, 4]);
    assert.equal(new Set(result.ids).size, 4);
    assert.deepEqual(result.reply, { from: car!.id, type: 'unlock-result', body: { unlocked: 'driver' } });
    assert.deepEqual(result.stored, [1, 3, 4]);
    const stored = await t.api('GET', `/messages/${result.ids[0]}?from=${car!.id}`);
    assert.equal(stored.status, 200, 'the id the browser made is the id stored');
  });
});
