import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { chromium } from 'playwright-core';
import { BUILT_APP } from '../plugins/portal/index.js';
import { flags, fmt, printHeader } from './lib/machine.js';
import { ADMIN_SECRET, startNitrogen } from './lib/targets.js';

/**
 * `npm run bench:portal`: what the portal costs a browser. The bundle's size as built (raw and
 * gzipped, as served), then, against a server started as `npm start` starts it (the embedded
 * default, portal on) holding `--devices` devices, in headless Chromium with a cold cache each
 * round:
 * - first load: from navigation to the login form ready (script parsed and run); its peer, a
 *   navigation to `/health` (a JSON answer, nothing to run) in the same fresh browser context;
 * - devices interactive: from pressing "Log in" to the first rows of the device table drawn
 *   (token, the first page of 500 devices with their presence, the virtualized list);
 * - the peer in the same run: the same login and first page asked for by the page's own fetch,
 *   without the app, so the ratio shows what the app adds to the API's answers.
 * Medians of `--rounds` rounds.
 */
const options = flags({ devices: 30_000, rounds: 5 });
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
// The page runs these; this project compiles without the DOM's types.
declare const document: { querySelectorAll(selector: string): { length: number } };
declare const performance: { now(): number };

printHeader('portal: bundle size and first load');
const assets = readdirSync(join(BUILT_APP, 'assets')).filter((f) => !f.endsWith('.map'));
let raw = 0;
let gz = 0;
for (const name of ['index.html', ...assets.map((a) => `assets/${a}`)]) {
  const body = readFileSync(join(BUILT_APP, name));
  const gzipped = gzipSync(body, { level: 9 }).length;
  raw += body.length;
  gz += gzipped;
  console.log(`${name.padEnd(28)} ${fmt(body.length).padStart(8)} B  gzip ${fmt(gzipped).padStart(7)} B`);
}
console.log(`${'total'.padEnd(28)} ${fmt(raw).padStart(8)} B  gzip ${fmt(gz).padStart(7)} B`);

console.log(`registering ${fmt(options.devices)} devices…`);
const target = await startNitrogen({ connections: options.devices, prefix: 'dev' });
const origin = new URL(target.server.rest).origin;
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: FLAGS });
const firstLoad: number[] = [];
const bare: number[] = [];
const interactive: number[] = [];
const peer: number[] = [];
let rowsInDom = 0;
try {
  for (let round = 0; round < options.rounds; round++) {
    const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    const blank = await context.newPage();
    await blank.goto(origin + '/health');
    bare.push(await blank.evaluate<number>('performance.now()'));
    await blank.close();
    const page = await context.newPage();
    await page.goto(origin + '/');
    await page.waitForSelector('#login-id');
    firstLoad.push(await page.evaluate<number>('performance.now()'));
    await page.fill('#login-id', 'admin');
    await page.fill('#login-secret', ADMIN_SECRET);
    // Both instants are read in the page: the form's submit event, and the first frame with rows.
    await page.evaluate("document.querySelector('form').addEventListener('submit', () => { globalThis.submitted = performance.now(); }, { capture: true })");
    await page.click('button[type=submit]');
    const drawn = await page.waitForFunction(() => document.querySelectorAll('[data-device]').length > 0 && performance.now(), undefined, { timeout: 60_000, polling: 'raf' });
    interactive.push(((await drawn.jsonValue()) as number) - (await page.evaluate<number>('globalThis.submitted')));
    rowsInDom = await page.evaluate(() => document.querySelectorAll('[data-device]').length);
    peer.push(
      await page.evaluate(async (secret) => {
        const t0 = performance.now();
        const auth = await fetch('/api/v1/principals/auth', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: 'admin', secret }) });
        const { accessToken } = (await auth.json()) as { accessToken: string };
        const res = await fetch('/api/v1/principals?type=device&with=presence&limit=500', { headers: { authorization: `Bearer ${accessToken}` } });
        await res.json();
        return performance.now() - t0;
      }, ADMIN_SECRET),
    );
    await context.close();
  }
} finally {
  await browser.close();
  await target.stop();
}
console.log(`first load, navigation to login form ready: median ${median(firstLoad).toFixed(0)} ms (${firstLoad.map((x) => x.toFixed(0)).join(', ')})`);
console.log(`peer: navigation to /health: median ${median(bare).toFixed(0)} ms; app / peer ${(median(firstLoad) / median(bare)).toFixed(2)}x`);
console.log(`login to device table drawn (${fmt(options.devices)} devices): median ${median(interactive).toFixed(0)} ms (${interactive.map((x) => x.toFixed(0)).join(', ')})`);
console.log(`peer: the same login and first page by fetch alone: median ${median(peer).toFixed(0)} ms; app / peer ${(median(interactive) / median(peer)).toFixed(2)}x`);
console.log(`rows in the DOM with ${fmt(options.devices)} devices known to the server: ${rowsInDom}`);
