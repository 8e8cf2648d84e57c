import { carTelemetry, LoadGenerator } from './lib/load.js';
import type { HttpLoadConfig } from './lib/http-load-worker.js';
import { diskFacts, flags, fmt, ms, printHeader } from './lib/machine.js';
import { measure, pointProblems, storeLine, type Point, type PointSettings } from './lib/point.js';
import { spawnBareKoa, stopProcess } from './lib/servers.js';
import { startNitrogen } from './lib/targets.js';

/**
 * `npm run bench:rest`: REST batch ingest, `POST /api/v1/messages` with a JSON array of
 * `--batch` envelopes and a device token, answered 201 after the durable commit — against a
 * bare koa endpoint that parses the same JSON and answers 201, in the same run. The client is
 * its own process: `--concurrency` keep-alive connections, one request in flight on each.
 */
const options = flags({ concurrency: 32, batch: 100, warmup: 3, seconds: 10, rounds: 1 });
printHeader('REST batch ingest: Nitrogen (embedded store, durable) vs a bare koa endpoint');
console.log(`disk:    ${diskFacts()}`);
console.log(`load:    ${options.concurrency} keep-alive connections (node:http Agent), one POST in flight on each, ${options.batch} ~230-byte car telemetry envelopes per request, ${options.warmup}s warm-up + ${options.seconds}s measured`);
console.log('peer:    koa + @koa/router, one route that reads and JSON.parses the body and answers 201 with the envelopes; no authentication, validation or storage');

// A few different bodies, each a batch of envelopes as a car that buffered its samples would send them.
const bodies = Array.from({ length: 8 }, (_, b) => {
  const samples = carTelemetry(options.batch + b).slice(b);
  const start = Date.now() - 60_000;
  return JSON.stringify(samples.map((s, i) => ({ type: 'telemetry', ts: new Date(start + i * 500).toISOString(), body: JSON.parse(s) as unknown })));
});
const settings: PointSettings = { window: 1, rate: 0, warmup: options.warmup, seconds: options.seconds, sources: [] };
const httpLoad = (url: string, tokens: string[]) => () => LoadGenerator.spawn('./http-load-worker.js', { url, tokens, concurrency: options.concurrency, bodies, batch: options.batch } satisfies HttpLoadConfig);

async function koaPoint(): Promise<Point> {
  const koa = await spawnBareKoa();
  const target = { name: 'bare koa', pid: koa.child.pid!, stop: async () => (await stopProcess(koa.child), { stored: null }) };
  return measure(target, options.concurrency, settings, httpLoad(`http://127.0.0.1:${koa.port}/api/v1/messages`, ['none']));
}

async function nitrogenPoint(): Promise<Point> {
  const target = await startNitrogen({ connections: options.concurrency, prefix: 'sender' });
  // Each connection posts as its own device, with the access token that device got for its secret.
  const tokens: string[] = [];
  for (const client of target.clients) {
    const res = await fetch(`${target.server.rest}/principals/auth`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: client.username, secret: client.password }) });
    tokens.push(((await res.json()) as { accessToken: string }).accessToken);
  }
  return measure(target, options.concurrency, settings, httpLoad(`${target.server.rest}/messages`, tokens));
}

const rows: string[] = [];
for (let round = 1; round <= options.rounds; round++) {
  const nitrogenFirst = round % 2 === 0;
  const first = nitrogenFirst ? await nitrogenPoint() : await koaPoint();
  const second = nitrogenFirst ? await koaPoint() : await nitrogenPoint();
  const [koa, nitrogen] = nitrogenFirst ? [second, first] : [first, second];
  for (const p of [koa, nitrogen]) {
    const server = p.cpu.processes.server!;
    rows.push(
      `| ${round} | ${p.target} | ${fmt(p.load.rate / options.batch)} | ${fmt(p.load.rate)} | ${ms(p.load.p50)} / ${ms(p.load.p99)} / ${ms(p.load.max)} | ` +
        `${server.cores.toFixed(2)} (${server.mainCores.toFixed(2)}) | ${((server.cores / p.load.rate) * 1e6).toFixed(1)} | ${p.cpu.processes.load!.cores.toFixed(2)} | ${p.cpu.othersCores.toFixed(2)} | ${fmt(p.rssMiB)} | ${p.loadAverage} |`,
    );
  }
  rows.push(`| ${round} | **ratio Nitrogen / bare koa** | | **${(nitrogen.load.rate / koa.load.rate).toFixed(2)}** | | | | | | | |`);
  console.log(`\nround ${round}: ${storeLine(nitrogen)}`);
  for (const problem of [...pointProblems(koa).map((p) => `bare koa: ${p}`), ...pointProblems(nitrogen).map((p) => `Nitrogen: ${p}`)]) console.log(`PROBLEM ${problem}`);
}
console.log("\n| round | server | requests/s | msgs/s | request p50 / p99 / max ms | server cores (main thread) | server CPU µs/msg | load gen cores | others' cores | server RSS MiB | load avg |");
console.log('|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|');
console.log(rows.join('\n'));
