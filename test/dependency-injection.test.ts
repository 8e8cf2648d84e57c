import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { MemoryRegistry, MemoryStore } from '../adapters/memory/index.js';
import { defaultCatalog } from '../catalog.js';
import { rootContainer, type InjectionToken } from '../core/di.js';
import { definePlugin, type PluginCatalog } from '../core/plugin.js';
import { createServer, type NitrogenServer } from '../core/server.js';
import { Tokens } from '../core/tokens.js';
import { lineTransportPlugin, type LineTransport } from './helpers/line-transport.js';
import { ADMIN_SECRET } from './helpers/server.js';
import { tempDir } from './helpers/temp.js';

const base = { host: '127.0.0.1', adminSecret: ADMIN_SECRET, store: { use: 'memory' }, registry: { use: 'memory' } } as const;

/** A pino logger whose records the test reads. */
function recordingLogger() {
  const records: Array<Record<string, unknown>> = [];
  const out = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line) records.push(JSON.parse(line));
      done();
    },
  });
  return { logger: pino({ level: 'info' }, out), records };
}

/** Sends one line to the line transport and resolves with its answer. */
async function sendLine(endpoint: string, line: string): Promise<string> {
  const { hostname, port } = new URL(endpoint);
  const socket = connect(Number(port), hostname);
  try {
    const answer = new Promise<string>((resolve, reject) => {
      createInterface({ input: socket }).once('line', resolve);
      socket.once('error', reject);
    });
    socket.write(`${line}\n`);
    return await answer;
  } finally {
    socket.destroy();
  }
}

async function api(server: NitrogenServer, method: string, path: string, token?: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(server.endpoints.rest + path, { method, headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}

describe('dependency injection', function () {
  this.timeout(20_000);
  const cleanup: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
  });

  function server(config: Record<string, unknown>, options: Partial<Parameters<typeof createServer>[1]> = {}): NitrogenServer {
    const dir = tempDir();
    const made = createServer({ ...base, log: { level: 'silent' }, ...config, dataDir: dir.path }, { catalog: defaultCatalog, ...options });
    cleanup.push(
      () => dir.remove(),
      () => made.stop(),
    );
    return made;
  }

  it("builds a third-party transport by constructor injection: the server's services, its options, its own logger and name", async () => {
    const created: LineTransport[] = [];
    const { logger, records } = recordingLogger();
    const catalog: PluginCatalog = { ...defaultCatalog, transport: { ...defaultCatalog.transport, line: async () => lineTransportPlugin(created) } };
    const s = server(
      {
        plugins: [
          { use: 'rest', options: { port: 0 } },
          { use: 'line', options: { port: 0 } },
        ],
      },
      { catalog, logger },
    );
    await s.start();

    const admin = (await api(s, 'POST', '/principals/auth', undefined, { id: 'admin', secret: ADMIN_SECRET })).body.accessToken;
    const [device] = (await api(s, 'POST', '/principals', admin, { type: 'device', id: 'meter-1' })).body.principals;
    const answer = await sendLine(s.endpoints.line!, `meter-1 ${device.secret} {"type":"telemetry","body":{"kWh":3.5}}`);
    const [, id] = /^ok (\S+)$/.exec(answer) ?? assert.fail(`answered ${answer}`);
    const stored = await api(s, 'GET', `/messages/${encodeURIComponent(id!)}`, admin);
    assert.equal(stored.status, 200);
    assert.deepEqual([stored.body.message.from, stored.body.message.body], ['meter-1', { kWh: 3.5 }]);
    assert.equal(await sendLine(s.endpoints.line!, 'meter-1 wrong-secret {}'), 'error NITROGEN_ERR_BAD_CREDENTIALS');

    const transport = created[0]!;
    assert.equal(transport.name, 'line');
    assert.equal(transport.authenticator, s.container.resolve(Tokens.Authenticator), "the server's one Authenticator, not a copy");
    assert.ok(
      records.some((r) => r.msg === 'line transport listening' && r.plugin === 'line'),
      'the injected logger is tagged with the instance',
    );

    await s.stop();
    assert.deepEqual(transport.events, ['stop', 'dispose'], 'stopped by the server, then disposed by its container');
    assert.throws(() => s.container.resolve(Tokens.Store), /disposed/);
  });

  it("gives each server its own container: two servers in one process share no service, and tsyringe's root container stays empty", async () => {
    const a = server({ plugins: [{ use: 'rest', options: { port: 0 } }] });
    const b = server({ plugins: [{ use: 'rest', options: { port: 0 } }] });
    await Promise.all([a.start(), b.start()]);
    for (const token of Object.values(Tokens)) assert.equal(rootContainer.isRegistered(token as InjectionToken<unknown>, true), false, String(token));
    assert.notEqual(a.container.resolve(Tokens.Ingestor), b.container.resolve(Tokens.Ingestor));

    const admin = (await api(a, 'POST', '/principals/auth', undefined, { id: 'admin', secret: ADMIN_SECRET })).body.accessToken;
    assert.equal((await api(a, 'POST', '/messages', admin, { type: 'telemetry', body: {} })).status, 201);
    const ingested = async (s: NitrogenServer) => {
      const text = await (await fetch(new URL('/metrics', s.endpoints.rest))).text();
      return /^nitrogen_messages_ingested_total\{transport="rest"\} (\d+)$/m.exec(text)?.[1];
    };
    assert.equal(await ingested(a), '1');
    assert.equal(await ingested(b), undefined, "B's metrics know nothing of A's message");
  });

  it('resolves a core service once per server whichever container asks, and gives each plugin instance its own logger', async () => {
    let seen: { authenticator: unknown; logger: { bindings(): Record<string, unknown> } } | undefined;
    const probe = definePlugin({
      name: 'probe',
      kind: 'transport',
      create: ({ container }) => {
        seen = { authenticator: container.resolve(Tokens.Authenticator), logger: container.resolve(Tokens.Logger) };
        return { start: async () => {}, stop: async () => {} };
      },
    });
    const s = server({ plugins: [{ use: 'probe' }] }, { catalog: { ...defaultCatalog, transport: { probe: async () => probe } } });
    await s.start();
    assert.equal(seen?.authenticator, s.container.resolve(Tokens.Authenticator));
    assert.equal(seen?.logger.bindings().plugin, 'probe');
    assert.equal(s.container.resolve(Tokens.Logger), s.logger, 'the server keeps its own logger');
  });

  it('checks needs against what the server provides before the slot, and what the embedding application registered', async () => {
    const early = definePlugin({ name: 'early', kind: 'store', needs: [Tokens.Ingestor], create: () => new MemoryStore() });
    const tooEarly = server({ store: { use: 'early' }, plugins: [] }, { catalog: { ...defaultCatalog, store: { early: async () => early } } });
    await assert.rejects(tooEarly.start(), (err: Error & { code?: string }) => err.code === 'NITROGEN_ERR_PLUGIN' && err.message.includes("store: plugin 'early' needs nitrogen.Ingestor, which nothing provides before it"));

    const Clock = Symbol('app.Clock') as InjectionToken<() => number>;
    let time: number | undefined;
    const clocked = definePlugin({
      name: 'clocked',
      kind: 'transport',
      needs: [Clock],
      create: ({ container }) => ({ start: async () => void (time = container.resolve(Clock)()), stop: async () => {} }),
    });
    const catalog: PluginCatalog = { ...defaultCatalog, transport: { clocked: async () => clocked } };
    const alone = server({ plugins: [{ use: 'clocked' }] }, { catalog });
    await assert.rejects(alone.start(), (err: Error & { code?: string }) => err.code === 'NITROGEN_ERR_PLUGIN' && err.message.includes('needs app.Clock, which nothing provides'));
    const app = rootContainer.createChildContainer().register(Clock, { useValue: () => 42 });
    await server({ plugins: [{ use: 'clocked' }] }, { catalog, container: app }).start();
    assert.equal(time, 42);
    assert.equal(rootContainer.isRegistered(Clock, true), false);
  });

  it('types the plugin kinds: the compiler holds create to its kind (this file does not build otherwise)', () => {
    const store = definePlugin({ name: 'kept', kind: 'store', create: () => new MemoryStore() });
    // @ts-expect-error a store plugin must create a Store, not a Registry
    definePlugin({ name: 'wrong', kind: 'store', create: () => new MemoryRegistry() });
    // @ts-expect-error a transport has start() and stop()
    definePlugin({ name: 'silent', kind: 'transport', create: () => ({}) });
    // @ts-expect-error a sink plugin has no place among the stores of a catalog
    const catalog: PluginCatalog = { store: { sink: async () => definePlugin({ name: 'sink', kind: 'sink', create: () => ({ name: 'sink', send: async () => {} }) }) } };
    assert.equal(store.kind, 'store');
    assert.ok(catalog.store);
  });
});
