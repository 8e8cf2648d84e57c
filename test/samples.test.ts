import assert from 'node:assert/strict';
import { once } from 'node:events';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { connect } from '@nitrogen/client';
import { defaultCatalog } from '../catalog.js';
import { createServer } from '../core/server.js';
import { Tokens } from '../core/tokens.js';
import { startDevice } from '../samples/basic-server/device.js';
import { basicServer } from '../samples/basic-server/server.js';
import { ADMIN_SECRET } from './helpers/server.js';
import { tempDir } from './helpers/temp.js';

describe('samples/basic-server', function () {
  it('composes a server with the custom log sink, which receives the telemetry of a device on the client library', async () => {
    const dir = tempDir();
    const lines: string[] = [];
    const out = new PassThrough();
    out.on('data', (chunk: Buffer) => lines.push(...chunk.toString().split('\n').filter(Boolean)));
    const server = basicServer(
      {
        dataDir: dir.path,
        adminSecret: ADMIN_SECRET,
        host: '127.0.0.1',
        log: { level: 'silent' },
        plugins: [
          { use: 'mqtt', options: { port: 0 } },
          { use: 'rest', options: { port: 0 } },
        ],
      },
      out,
    );
    try {
      await server.start();
      const url = server.endpoints.rest!;
      const admin = await connect({ url, id: 'admin', secret: ADMIN_SECRET, transport: 'rest' });
      const [registered, dash] = await admin.register([
        { type: 'device', id: 'car-1' },
        { type: 'app', id: 'dash' },
      ]);
      await admin.request('POST', '/permissions', { issuedTo: 'dash', principalFor: 'car-1', action: 'send', authorized: true });
      await admin.close();
      const device = await startDevice({ url, id: 'car-1', secret: registered!.secret!, queueFile: join(dir.path, 'car-1.queue'), everyMs: 60_000 });
      try {
        await device.session.send({ type: 'telemetry', body: { speed: 77 } });
        await device.session.send({ type: 'location', body: { lat: 1 } });
        // The sink is fed from the store after the commit: wait for its line, not for time.
        while (lines.length === 0) await once(out, 'data');
        assert.equal(lines.length, 1, lines.join('\n'));
        assert.match(lines[0]!, /^\[telemetry\] \S+ car-1 telemetry \{"speed":77\}$/);
        // The device answers the pings of an app that may send to it (the reply rule; not admin's, which it may not address).
        const app = await connect({ url, id: 'dash', secret: dash!.secret! });
        const reply = await app.command('car-1', 'ping', 'hello');
        assert.equal((reply.body as { pong: string }).pong, 'hello');
        await app.close();
      } finally {
        await device.stop();
      }
    } finally {
      await server.stop();
      dir.remove();
    }
  });

  it('loads a plugin by module path from the configuration', async () => {
    const dir = tempDir();
    const server = createServer(
      { dataDir: dir.path, log: { level: 'silent' }, plugins: [], sinks: [{ use: fileURLToPath(new URL('../samples/basic-server/log-sink.js', import.meta.url)), options: { prefix: 'x' } }] },
      { catalog: defaultCatalog },
    );
    try {
      await server.start();
      assert.equal(server.container.resolve(Tokens.Sinks)[0]!.name, 'log');
      await server.stop();
      const unknown = createServer({ dataDir: dir.path, log: { level: 'silent' }, plugins: [{ use: 'carrier-pigeon' }] }, { catalog: defaultCatalog });
      await assert.rejects(unknown.start(), (err: Error & { code?: string }) => err.code === 'NITROGEN_ERR_PLUGIN' && err.message.includes("plugins.0: unknown transport 'carrier-pigeon'"));
      const wrongKind = createServer({ dataDir: dir.path, log: { level: 'silent' }, plugins: [{ use: fileURLToPath(new URL('../samples/basic-server/log-sink.js', import.meta.url)) }] }, { catalog: defaultCatalog });
      await assert.rejects(wrongKind.start(), (err: Error & { code?: string }) => err.code === 'NITROGEN_ERR_PLUGIN' && err.message.includes('is a sink plugin, not a transport'));
    } finally {
      await server.stop();
      dir.remove();
    }
  });

  it('refuses a bad sink option at start, naming the field', async () => {
    const dir = tempDir();
    const server = basicServer({ dataDir: dir.path, log: { level: 'silent' }, plugins: [], sinks: [{ use: 'log', options: { prefix: 42 } }] });
    try {
      await assert.rejects(server.start(), (err: Error & { code?: string }) => err.code === 'NITROGEN_ERR_CONFIG' && err.message.includes('sinks.0.options.prefix'));
    } finally {
      dir.remove();
    }
  });
});
