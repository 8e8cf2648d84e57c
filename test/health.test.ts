import assert from 'node:assert/strict';
import { defaultCatalog } from '../catalog.js';
import type { HealthReport } from '../core/health.js';
import { definePlugin, type PluginCatalog } from '../core/plugin.js';
import { createServer } from '../core/server.js';
import { Tokens } from '../core/tokens.js';
import { EventHubsPeer } from './helpers/eventhubs-peer.js';
import { ADMIN_SECRET, startServer, type TestServer } from './helpers/server.js';
import { tempDir } from './helpers/temp.js';

/** Probes often, so the tests wait for what a probe finds in milliseconds, not seconds. */
const quick = { health: { probeInterval: '50ms', probeTimeout: '1s' } };
const fastDelivery = { batchSize: 50, lingerMs: 5, retryMinMs: 20, retryMaxMs: 100, pollMs: 50 };

async function get(origin: string, path: string): Promise<{ status: number; body: any; text: string }> {
  const res = await fetch(`${origin}${path}`);
  const text = await res.text();
  return { status: res.status, text, body: (res.headers.get('content-type') ?? '').includes('json') ? JSON.parse(text) : text };
}

async function until<T>(what: string, read: () => Promise<T>, check: (value: T) => boolean, ms = 10_000): Promise<T> {
  for (const end = Date.now() + ms; ;) {
    const value = await read();
    if (check(value)) return value;
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms; last seen ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A transport that holds its start (or stop) until the test lets it go: a server caught half-way. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  let stopping!: () => void;
  const stopCalled = new Promise<void>((resolve) => (stopping = resolve));
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const plugin = definePlugin({
    name: 'gate',
    kind: 'transport',
    create: () => ({
      start: () => opened,
      stop: () => {
        stopping();
        return released;
      },
    }),
  });
  return { plugin, open, stopCalled, release };
}

describe('health and readiness', function () {
  this.timeout(30_000);
  let t: TestServer | undefined;
  afterEach(async () => {
    await t?.stop();
    t = undefined;
  });

  it('answers liveness and readiness with every component ok once started, and says so in the metrics', async () => {
    t = await startServer(quick);
    assert.equal((await get(t.origin, '/health')).body.status, 'ok');
    const ready = await get(t.origin, '/ready');
    assert.equal(ready.status, 200);
    const report = ready.body as HealthReport;
    assert.equal(report.status, 'ok');
    assert.equal(report.ready, true);
    assert.deepEqual(Object.keys(report.components).sort(), ['identity', 'registry', 'store', 'transport:mqtt', 'transport:rest']);
    assert.ok(
      Object.values(report.components).every((c) => c.status === 'ok' && c.critical),
      JSON.stringify(report),
    );
    assert.ok(report.checkedAt && Date.parse(report.checkedAt) <= Date.now());
    const metrics = (await get(t.origin, '/metrics')).text;
    assert.match(metrics, /^nitrogen_ready 1$/m);
    assert.match(metrics, /^nitrogen_component_status\{component="store",kind="store"\} 0$/m);
    assert.equal((await get(t.origin, '/ready?verbose=1')).status, 400, 'an unknown parameter is refused, as on every route');
  });

  it('is not ready while it starts or stops, though it answers liveness', async () => {
    const dir = tempDir();
    const held = gate();
    const catalog: PluginCatalog = { ...defaultCatalog, transport: { ...defaultCatalog.transport, gate: async () => held.plugin } };
    const server = createServer({ ...quick, dataDir: dir.path, adminSecret: ADMIN_SECRET, log: { level: 'silent' }, plugins: [{ use: 'rest', options: { port: 0 } }, { use: 'gate' }] }, { catalog });
    try {
      const starting = server.start();
      const rest = await until(
        'REST listening',
        async () => server.endpoints.rest,
        (url) => url !== undefined,
      );
      const origin = new URL(rest!).origin;
      const early = await get(origin, '/ready');
      assert.equal(early.status, 503);
      assert.equal(early.body.status, 'starting');
      assert.equal((await get(origin, '/health')).status, 200);
      held.open();
      await starting;
      assert.equal((await get(origin, '/ready')).status, 200);

      // Transports stop in reverse order: the gate first, and REST still answers meanwhile.
      const stopping = server.stop();
      await held.stopCalled;
      const late = await get(origin, '/ready');
      assert.equal(late.status, 503);
      assert.equal(late.body.status, 'stopping');
      held.release();
      await stopping;
      assert.equal(server.health.report().status, 'stopped');
    } finally {
      held.open();
      held.release();
      await server.stop();
      dir.remove();
    }
  });

  it('stays ready but degraded while a sink fails to authenticate, saying which and why, without its key', async () => {
    const hub = await EventHubsPeer.start();
    try {
      const key = 'd3Jvbmcta2V5';
      t = await startServer({ ...quick, sinks: [{ use: 'eventhubs', name: 'hub', delivery: fastDelivery, options: { connectionString: hub.connectionString({ key }) } }] });
      const sent = await t.api('POST', '/messages', { body: { type: 'telemetry', body: { speed: 88 } } });
      assert.equal(sent.status, 201);
      const ready = await until(
        'the sink reported down',
        () => get(t!.origin, '/ready'),
        (r) => r.body.components['sink:hub']?.status === 'down',
      );
      assert.equal(ready.status, 200, 'a sink fed from the store does not stop ingestion');
      assert.equal(ready.body.status, 'degraded');
      assert.equal(ready.body.ready, true);
      const sink = ready.body.components['sink:hub'];
      assert.equal(sink.critical, false);
      assert.match(sink.reason, /put-token refused with status 401/);
      assert.equal(sink.details.lagMessages, 1);
      assert.equal(ready.text.includes(key), false, 'the key is not shown');
      assert.match((await get(t.origin, '/metrics')).text, /^nitrogen_component_status\{component="sink:hub",kind="sink"\} 2$/m);
      // Ingestion goes on.
      assert.equal((await t.api('POST', '/messages', { body: { type: 'telemetry' } })).status, 201);
    } finally {
      await t?.stop();
      t = undefined;
      await hub.stop();
    }
  });

  it('reports a sink ok again once the downstream takes messages again', async () => {
    const hub = await EventHubsPeer.start();
    try {
      hub.outcome = () => 'release';
      t = await startServer({ ...quick, sinks: [{ use: 'eventhubs', name: 'hub', delivery: fastDelivery, options: { connectionString: hub.connectionString() } }] });
      assert.equal((await t.api('POST', '/messages', { body: { type: 'telemetry' } })).status, 201);
      const down = await until(
        'the sink reported down',
        () => get(t!.origin, '/ready'),
        (r) => r.body.components['sink:hub']?.status === 'down',
      );
      assert.match(down.body.components['sink:hub'].reason, /released/);
      hub.outcome = () => 'accept';
      const ready = await until(
        'the sink ok',
        () => get(t!.origin, '/ready'),
        (r) => r.body.components['sink:hub']?.status === 'ok' && r.body.components['sink:hub'].details?.lagMessages === 0,
      );
      assert.equal(ready.body.status, 'ok');
      assert.ok(Date.parse(ready.body.components['sink:hub'].since) >= Date.parse(down.body.components['sink:hub'].since), 'since moves with the status');
    } finally {
      await t?.stop();
      t = undefined;
      await hub.stop();
    }
  });

  it('answers 503 once the store is out of order, naming it', async () => {
    t = await startServer(quick);
    assert.equal((await get(t.origin, '/ready')).status, 200);
    // The SQLite store's compactor thread dies, as on a crash of that thread: every append would fail.
    const store = t.server.container.resolve(Tokens.Store) as unknown as { compactor: { worker: { terminate(): Promise<number> } } };
    await store.compactor.worker.terminate();
    const ready = await until(
      'the store reported down',
      () => get(t!.origin, '/ready'),
      (r) => r.status === 503,
    );
    assert.equal(ready.body.status, 'down');
    assert.equal(ready.body.ready, false);
    assert.equal(ready.body.components.store.status, 'down');
    assert.match(ready.body.components.store.reason, /SQLite store is out of order/);
    assert.match((await get(t.origin, '/metrics')).text, /^nitrogen_ready 0$/m);
    assert.equal((await get(t.origin, '/health')).status, 200, 'the process still serves: liveness stays');
  });
});
