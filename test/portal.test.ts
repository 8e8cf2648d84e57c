import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { get as httpGet, type IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, type Session as ClientSession } from '@nitrogen/client';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { runFleet, type SimulatorSummary } from '../samples/car-telemetry/simulator.js';
import { ADMIN_SECRET, startServer, type TestServer } from './helpers/server.js';
import { tempDir } from './helpers/temp.js';
import { RheaBroker } from './sinks-amqp/rhea-broker.js';
import { fastDelivery, until } from './sinks-amqp/util.js';

/** What the functions run in the page read (this project compiles without the DOM's types). */
declare const document: { querySelectorAll(selector: string): { length: number }; querySelector(selector: string): { getAttribute(name: string): string | null; textContent: string | null } | null };

const CHROMIUM = '/usr/bin/chromium';
const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
/** Screenshots go to docs/portal/ only when asked, so `npm test` does not rewrite tracked files. */
const SHOTS = process.env.NITROGEN_SCREENSHOTS === '1' ? fileURLToPath(new URL('../../docs/portal/', import.meta.url)) : null;
const DESKTOP = { width: 1280, height: 860 };
const PHONE = { width: 390, height: 844 };
const WAIT = { timeout: 20_000 };
const PASSWORD = 'correct horse battery staple';

/** Serving needs no browser: headers, paths, and the plugin turned off or unbuilt. */
describe('portal: serving the app beside the API', function () {
  this.timeout(30_000);
  let server: TestServer;
  before(async () => {
    server = await startServer({ plugins: [{ use: 'mqtt', options: { port: 0 } }, { use: 'rest', options: { port: 0 } }, { use: 'portal' }] });
  });
  after(async () => server?.stop());

  it('serves the app at / with content types, caching, a CSP, gzip, and the API still default-deny', async () => {
    const page = await fetch(server.origin + '/', { headers: { 'accept-encoding': 'gzip' } });
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type')!, /^text\/html; charset=utf-8/);
    assert.equal(page.headers.get('cache-control'), 'no-cache');
    assert.match(page.headers.get('content-security-policy')!, /script-src 'self'.*frame-ancestors 'none'/);
    assert.equal(page.headers.get('x-content-type-options'), 'nosniff');
    const html = await page.text();
    // Revalidated with its validator, as a browser does for a no-cache page, it costs a 304. (Not
    // with fetch: a conditional fetch adds `Cache-Control: no-cache`, which asks for the whole answer.)
    const again = await new Promise<IncomingMessage>((resolve, reject) => httpGet(server.origin + '/', { headers: { 'if-none-match': page.headers.get('etag')! } }, resolve).on('error', reject));
    again.resume();
    assert.equal(again.statusCode, 304);
    const script = /src="(\/assets\/main-[A-Z0-9]{8}\.js)"/.exec(html)?.[1];
    const style = /href="(\/assets\/main-[A-Z0-9]{8}\.css)"/.exec(html)?.[1];
    assert.ok(script && style, html);
    assert.doesNotMatch(html, /https?:\/\//, 'nothing from another origin: no CDN');
    const js = await fetch(server.origin + script, { headers: { 'accept-encoding': 'gzip' } });
    assert.equal(js.status, 200);
    assert.match(js.headers.get('content-type')!, /^text\/javascript/);
    assert.equal(js.headers.get('cache-control'), 'public, max-age=31536000, immutable');
    assert.equal(js.headers.get('content-encoding'), 'gzip');
    assert.match((await fetch(server.origin + style)).headers.get('content-type')!, /^text\/css/);
    // Public are the app's own files only: any other path, and every API route, needs a token.
    assert.equal((await fetch(server.origin + '/assets/other.js')).status, 401);
    assert.equal((await fetch(server.origin + '/index.htm')).status, 401);
    assert.equal((await fetch(server.origin + '/api/v1/principals')).status, 401);
    assert.equal((await fetch(server.origin + '/', { method: 'POST' })).status, 401);
    assert.equal((await fetch(server.origin + '/ready')).headers.get('content-type')?.startsWith('application/json'), true);
  });

  it('serves nothing without the plugin, and refuses to start without a build', async () => {
    const without = await startServer();
    try {
      assert.equal((await fetch(without.origin + '/')).status, 401);
    } finally {
      await without.stop();
    }
    const empty = tempDir('nitrogen-portal-empty-');
    const data = tempDir('nitrogen-portal-data-');
    try {
      await assert.rejects(
        startServer(
          {
            plugins: [
              { use: 'rest', options: { port: 0 } },
              { use: 'portal', options: { dir: empty.path } },
            ],
          },
          data.path,
        ),
        (err: Error) => /the portal is not built/.test(err.message),
      );
    } finally {
      empty.remove();
      data.remove();
    }
  });
});

/**
 * The portal in headless Chromium against a real server: the embedded plugins (MQTT, REST, the
 * portal), a fleet of the car sample over MQTT, an AMQP 1.0 sink to a rhea broker, and users
 * logged in through the login form. Each step waits for the state it asserts.
 */
describe('portal: the web app in a real browser', function () {
  this.timeout(90_000);
  let t: TestServer;
  let broker: RheaBroker;
  let browser: Browser;
  let adminContext: BrowserContext;
  let admin: Page;
  const dir = tempDir('nitrogen-portal-');
  let fleet: Promise<SimulatorSummary> | undefined;
  const stopFleet = new AbortController();
  let device: ClientSession | undefined;
  let registered: { id: string; secret: string };

  async function shot(page: Page, name: string): Promise<void> {
    if (!SHOTS) return;
    mkdirSync(SHOTS, { recursive: true });
    const size = page.viewportSize()!;
    await page.screenshot({ path: join(SHOTS, `${name}-desktop.png`), fullPage: true });
    await page.setViewportSize(PHONE);
    await page.waitForTimeout(300); // layout settles after the resize (screenshots only)
    await page.screenshot({ path: join(SHOTS, `${name}-phone.png`), fullPage: true });
    await page.setViewportSize(size);
  }

  async function login(context: BrowserContext, id: string, secret: string): Promise<Page> {
    const page = await context.newPage();
    page.on('pageerror', (err) => console.error(`page error (${id}):`, err));
    await page.goto(t.origin + '/');
    await page.fill('#login-id', id);
    await page.fill('#login-secret', secret);
    await page.click('button[type=submit]');
    await page.waitForSelector(`[data-testid=who]:text-is("${id}")`, WAIT);
    return page;
  }

  /**
   * What a page must give assistive technology: every field a label, every button a name, one
   * h1, and the current page marked in the menu. Run on each page the tests visit.
   */
  async function assertAccessible(page: Page, name: string): Promise<void> {
    const problems = await page.evaluate(`(() => {
      const problems = [];
      for (const el of document.querySelectorAll('input, select, textarea')) if (el.labels.length === 0 && !el.getAttribute('aria-label')) problems.push('unlabelled ' + (el.id || el.name || el.tagName));
      for (const el of document.querySelectorAll('button')) if (!(el.textContent.trim() || el.getAttribute('aria-label'))) problems.push('button without a name');
      if (document.querySelectorAll('h1').length !== 1) problems.push(document.querySelectorAll('h1').length + ' h1 elements');
      if (document.querySelector('nav') && !document.querySelector('nav [aria-current=page]')) problems.push('no current page in the menu');
      return problems;
    })()`);
    assert.deepEqual(problems, [], `${name}: ${JSON.stringify(problems)}`);
  }

  /** Ids of the device rows the page shows (the virtualized list's rows in view). */
  function rowIds(page: Page): Promise<string[]> {
    return page.$$eval('[data-device]', (rows) => rows.map((r) => r.getAttribute('data-device')!));
  }

  before(async function () {
    if (!existsSync(CHROMIUM)) {
      if (process.env.CI === 'true') throw new Error(`${CHROMIUM} is missing: CI must install it (apt-get install -y chromium)`);
      console.log(`      skipped: ${CHROMIUM} is not installed (apt-get install -y chromium)`);
      this.skip();
    }
    broker = await RheaBroker.start();
    t = await startServer({
      plugins: [{ use: 'mqtt', options: { port: 0 } }, { use: 'rest', options: { port: 0 } }, { use: 'portal' }],
      sinks: [{ use: 'amqp', name: 'warehouse', delivery: fastDelivery, filter: { type: ['telemetry'] }, options: { url: broker.url, address: 'telemetry' } }],
    });
    await t.api('POST', '/principals', {
      body: [
        { type: 'user', id: 'alice', password: PASSWORD },
        { type: 'user', id: 'bob', password: PASSWORD },
      ],
    });
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
    adminContext = await browser.newContext({ viewport: DESKTOP, acceptDownloads: true });
  });

  after(async () => {
    stopFleet.abort();
    await fleet?.catch(() => undefined);
    await device?.close();
    await browser?.close();
    await t?.stop();
    await broker?.stop();
    dir.remove();
  });

  it('logs in, registers a device, shows its secret once and downloads its credentials', async () => {
    admin = await adminContext.newPage();
    admin.on('pageerror', (err) => console.error('page error (admin):', err));
    await admin.goto(t.origin + '/');
    await assertAccessible(admin, 'login');
    await shot(admin, 'login');
    await admin.fill('#login-id', 'admin');
    await admin.fill('#login-secret', 'wrong secret');
    await admin.click('button[type=submit]');
    await admin.waitForSelector('[role=alert]:has-text("secret")', WAIT);
    // By keyboard alone: the id field has focus, Tab to the secret, Enter submits.
    await admin.fill('#login-id', '');
    await admin.fill('#login-secret', '');
    await admin.focus('#login-id');
    await admin.keyboard.type('admin');
    await admin.keyboard.press('Tab');
    await admin.keyboard.type(ADMIN_SECRET);
    await admin.keyboard.press('Enter');
    await admin.waitForSelector('[data-testid=who]:text-is("admin")', WAIT);
    await assertAccessible(admin, 'devices');
    // The token is held in memory only: nothing in web storage or cookies.
    assert.deepEqual(await admin.evaluate('[Object.keys(localStorage).length, Object.keys(sessionStorage).length, document.cookie]'), [0, 0, '']);

    await admin.fill('#reg-id', 'portal-car');
    await admin.fill('#reg-tags', 'demo');
    await admin.click('#register-h ~ form button[type=submit]');
    await admin.waitForSelector('dialog[open] code.secret', WAIT);
    const shown = await admin.textContent('dialog[open] code.secret');
    const [download] = await Promise.all([admin.waitForEvent('download'), admin.click('dialog[open] button:has-text("Download credentials")')]);
    const file = join(dir.path, 'credentials.json');
    await download.saveAs(file);
    const saved = JSON.parse(readFileSync(file, 'utf8')) as { rest: string; credentials: Array<{ id: string; secret: string }> };
    assert.equal(saved.rest, t.restUrl);
    assert.deepEqual(saved.credentials, [{ id: 'portal-car', secret: shown }]);
    registered = saved.credentials[0]!;
    // The secret works, and closing the dialog forgets it.
    assert.ok(await t.token(registered.id, registered.secret));
    await admin.click('dialog[open] button:has-text("Close")');
    await admin.waitForSelector('code.secret', { state: 'detached', ...WAIT });
    await admin.waitForSelector('[data-device="portal-car"][data-online=false]', WAIT);
  });

  it('shows cars of the simulator online, live, and their charts and track moving', async () => {
    fleet = runFleet({ rest: t.restUrl, adminSecret: ADMIN_SECRET, cars: 3, driving: 1, rate: 5, duration: 0, reportEvery: 60, credentials: join(dir.path, 'fleet.json'), signal: stopFleet.signal });
    // The list asks again for the rows in view every few seconds: no reload.
    await admin.waitForFunction(() => document.querySelectorAll('[data-online=true]').length === 3, undefined, WAIT);
    assert.deepEqual((await rowIds(admin)).sort(), ['car-0', 'car-1', 'car-2', 'portal-car']);
    await admin.fill('#device-search', 'car-1');
    await admin.waitForFunction(() => document.querySelectorAll('[data-device]').length === 1, undefined, WAIT);
    await admin.fill('#device-search', '');
    await shot(admin, 'devices');

    await admin.click('a[href="#/devices/car-0"]');
    await admin.waitForSelector('[data-testid=live-state]:has-text("live")', WAIT);
    for (const chart of ['Speed', 'Engine', 'Fuel', 'Temperature']) await admin.waitForSelector(`[data-chart="${chart}"]`, WAIT);
    const points = () => admin.$eval('[data-chart="Engine"]', (el) => Number(el.getAttribute('data-points')));
    const before = await points();
    // New samples arrive over SSE and extend the charts.
    await admin.waitForFunction((n) => Number(document.querySelector('[data-chart="Engine"]')?.getAttribute('data-points')) >= n + 3, before, WAIT);
    await admin.waitForFunction(() => Number(document.querySelector('svg.track')?.getAttribute('data-positions')) > 2, undefined, WAIT);
    await admin.waitForSelector('dl.latest dt:has-text("telemetry")', WAIT);
    // The stored messages, filtered and paged.
    await admin.fill('#msg-type', 'telemetry');
    // More than a page (25) of them stored first, so that there is a next page.
    await until(async () => (await t.api('GET', '/messages?from=car-0&type=telemetry&limit=30')).body.messages.length === 30, 20_000);
    await admin.click('#messages-h ~ form button[type=submit]');
    await admin.waitForFunction(() => document.querySelectorAll('table.messages tbody tr').length === 25, undefined, WAIT);
    const firstPage = await admin.$$eval('table.messages tbody tr td:nth-child(2)', (cells) => cells.map((c) => c.textContent));
    assert.ok(firstPage.every((type) => type === 'telemetry'));
    const top = await admin.textContent('table.messages tbody tr time');
    await admin.click('button:has-text("Next page")');
    await admin.waitForFunction((old) => document.querySelector('table.messages tbody tr time')?.textContent !== old, top, WAIT);
    await assertAccessible(admin, 'device');
    await shot(admin, 'device');
  });

  it("shows a device's twin, sends it a command and shows its reply", async () => {
    device = await connect({ url: t.restUrl, id: registered.id, secret: registered.secret });
    await (
      await device.onCommand('unlock', (command) => ({ unlocked: (command.body as { door: string }).door }))
    ).ready;
    // The device answers whoever may send to it; to answer the bootstrap admin it needs a record.
    await t.grant({ issuedTo: registered.id, principalFor: 'admin', action: 'send', authorized: true });
    assert.equal((await t.api('PATCH', `/principals/${registered.id}/twin/desired`, { body: { interval: 5 } })).status, 200);
    await admin.goto(`${t.origin}/#/devices/${registered.id}`);
    await admin.waitForSelector('[data-testid=live-state]:has-text("live")', WAIT);
    // Its twin beside its last-known state: what is wanted and not yet reported.
    await admin.waitForSelector('dl.latest dt:has-text("twin: desired v1")', WAIT);
    assert.deepEqual(JSON.parse((await admin.textContent('dl.latest dt:has-text("still to apply") + dd pre'))!), { interval: 5 });
    await admin.fill('#cmd-type', 'unlock');
    await admin.fill('#cmd-body', '{"door": "driver"}');
    await admin.click('#command-h ~ form button[type=submit]');
    await admin.waitForSelector('[data-testid=command-reply]:text-is(\'{"unlocked":"driver"}\')', WAIT);
  });

  it('grants and revokes a permission and claims a device by code: another user sees what it allows and nothing else', async () => {
    const aliceContext = await browser.newContext({ viewport: DESKTOP });
    const bobContext = await browser.newContext({ viewport: DESKTOP });
    try {
      const alice = await login(aliceContext, 'alice', PASSWORD);
      const bob = await login(bobContext, 'bob', PASSWORD);
      await alice.waitForSelector('text=No devices you may view.', WAIT);
      assert.deepEqual(await rowIds(alice), []);
      // Only what the principal may: no sinks menu without admin on the system.
      assert.equal(await alice.$('nav a[href="#/sinks"]'), null);

      await admin.goto(`${t.origin}/#/permissions`);
      await admin.fill('#perm-to', 'alice');
      await admin.selectOption('#perm-action', 'admin');
      await admin.fill('#perm-for', 'car-1');
      await admin.click('#grant-h ~ form button[type=submit]');
      await admin.waitForSelector('[role=status]:has-text("alice may admin on car-1")', WAIT);
      await assertAccessible(admin, 'permissions');
      await shot(admin, 'permissions');

      // Alice's list, asked again every few seconds, shows car-1 and nothing else; Bob still nothing.
      await alice.waitForFunction(() => document.querySelectorAll('[data-device]').length === 1, undefined, WAIT);
      assert.deepEqual(await rowIds(alice), ['car-1']);
      await alice.click('a[href="#/devices/car-1"]');
      await alice.waitForSelector('[data-testid=live-state]:has-text("live")', WAIT);
      await alice.waitForSelector('[data-chart="Speed"]', WAIT);

      await bob.goto(`${t.origin}/#/devices/car-1`);
      await bob.waitForSelector('[role=alert]', WAIT);
      assert.equal(await bob.$('[data-chart]'), null, 'no data of a device Bob may not view');
      await bob.goto(`${t.origin}/#/devices`);
      await bob.waitForSelector('text=No devices you may view.', WAIT);
      assert.deepEqual(await rowIds(bob), []);

      // Revoked: alice's list empties again.
      await admin.click('button[aria-label="Revoke: alice may admin on car-1"]');
      await admin.waitForSelector('[role=status]:has-text("Revoked")', WAIT);
      await alice.goto(`${t.origin}/#/devices`);
      await alice.waitForSelector('text=No devices you may view.', WAIT);

      // A claim code from the device's label: a wrong one is refused, the right one makes it hers.
      const { code } = (await t.api('POST', `/principals/${registered.id}/claim-code`)).body as { code: string };
      await alice.fill('#claim-code', 'AAAAA-AAAAA');
      await alice.click('#claim-h ~ form button[type=submit]');
      await alice.waitForSelector('[role=alert]', WAIT);
      await alice.fill('#claim-code', code.toLowerCase());
      await alice.click('#claim-h ~ form button[type=submit]');
      await alice.waitForSelector(`[role=status]:has-text("Claimed ${registered.id}")`, WAIT);
      await alice.waitForSelector(`[data-device="${registered.id}"]`, WAIT);
      assert.deepEqual(await rowIds(alice), [registered.id]);
      assert.deepEqual(await rowIds(bob), []);
    } finally {
      await aliceContext.close();
      await bobContext.close();
    }
  });

  it('replays a time range into a sink and shows it done', async () => {
    await admin.goto(`${t.origin}/#/sinks`);
    await admin.waitForFunction(() => Number(document.querySelector('[data-sink=warehouse] [data-testid=delivered]')?.textContent) > 0, undefined, WAIT);
    const received = () => broker.received.get('telemetry')?.length ?? 0;
    const before = received();
    await admin.click('#sink-warehouse-h ~ form button[type=submit]');
    await admin.waitForSelector('[data-replay="1"][data-state=done]', WAIT);
    const { body } = await t.api('GET', '/sinks/warehouse');
    const replay = body.sink.replays[0];
    assert.equal(replay.state, 'done');
    assert.ok(replay.sent > 0);
    await until(() => received() >= before + replay.sent);
    await assertAccessible(admin, 'sinks');
    await shot(admin, 'sinks');
  });

  it("shows health, throughput and latency from the server's metrics", async () => {
    await admin.goto(`${t.origin}/#/system`);
    await admin.waitForSelector('[data-testid=system-status]', WAIT);
    assert.match((await admin.textContent('[data-testid=system-status]'))!, /^(ok|degraded)$/);
    await admin.waitForFunction(() => Number(document.querySelector('[data-chart="Ingested"]')?.getAttribute('data-points')) >= 2, undefined, WAIT);
    await assertAccessible(admin, 'system');
    await shot(admin, 'system');
  });

  it('pages a large fleet from the server and draws only the rows in view', async () => {
    const many = Array.from({ length: 1200 }, (_, i) => ({ type: 'device' as const, id: `fleet-${String(i).padStart(5, '0')}` }));
    for (let i = 0; i < many.length; i += 600) assert.equal((await t.api('POST', '/principals', { body: many.slice(i, i + 600) })).status, 201);
    await admin.goto(`${t.origin}/#/devices`);
    await admin.waitForSelector('[data-device="car-0"]', WAIT);
    // One page of 500 is loaded; the DOM holds a screenful of rows, not hundreds.
    await admin.waitForSelector('[data-testid=device-counts]:has-text("500 loaded (more on scroll)")', WAIT);
    assert.ok((await rowIds(admin)).length < 40, `${(await rowIds(admin)).length} rows in the DOM`);
    // Scrolled to the end, the next pages come from the server, until the last device.
    const loaded = async () => Number.parseInt((await admin.textContent('[data-testid=device-counts]'))!, 10);
    for (let before = await loaded(); before < 1204; before = await loaded()) {
      await admin.$eval('.vbody', (el) => el.scrollTo(0, el.scrollHeight));
      await admin.waitForFunction((n) => Number.parseInt(document.querySelector('[data-testid=device-counts]')!.textContent!, 10) > n, before, WAIT);
    }
    await admin.$eval('.vbody', (el) => el.scrollTo(0, el.scrollHeight));
    await admin.waitForSelector('[data-device="portal-car"]', WAIT);
    await admin.waitForSelector('[data-testid=device-counts]:has-text("1204 loaded ·")', WAIT);
    assert.ok((await rowIds(admin)).length < 40);
  });
});
