import assert from 'node:assert/strict';
import { connectAsync, type MqttClient } from 'mqtt';
import { exited, spawnServer, type ServerProcess } from './helpers/process.js';
import { ADMIN_SECRET, startServer } from './helpers/server.js';
import { tempDir } from './helpers/temp.js';

async function api(base: string, method: string, path: string, token?: string, body?: unknown): Promise<any> {
  const res = await fetch(base + path, {
    method,
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

async function allMessageIds(base: string, token: string): Promise<Set<string>> {
  const ids = new Set<string>();
  let cursor: string | null = null;
  do {
    const res: any = await api(base, 'GET', `/messages?limit=1000${cursor ? `&cursor=${cursor}` : ''}`, token);
    for (const m of res.body.messages) ids.add(m.id);
    cursor = res.body.next;
  } while (cursor);
  return ids;
}

describe('durability', function () {
  this.timeout(60_000);

  it('keeps devices, messages and tokens across a graceful restart on the same data directory', async () => {
    const dir = tempDir();
    try {
      let t = await startServer({}, dir.path);
      const [car] = await t.register([{ type: 'device', id: 'car-keep' }]);
      const client = await t.mqtt(car!.id, car!.secret);
      await client.publishAsync('devices/car-keep/messages/telemetry', JSON.stringify({ v: 1 }), { qos: 1 });
      await client.endAsync();
      const token = await t.token(car!.id, car!.secret);
      await t.stop();

      t = await startServer({}, dir.path);
      const res = await t.api('GET', '/messages?from=car-keep');
      assert.deepEqual(
        res.body.messages.map((m: any) => m.body),
        [{ v: 1 }],
      );
      assert.equal((await t.api('GET', '/messages', { token })).status, 200, 'a token issued before the restart still verifies');
      const again = await t.mqtt(car!.id, car!.secret);
      await again.endAsync();
      await t.stop();
    } finally {
      dir.remove();
    }
  });

  it('has every PUBACKed message in the store after SIGKILL mid-stream', async () => {
    const dir = tempDir();
    const env = { NITROGEN_DATA_DIR: dir.path, NITROGEN_ADMIN_SECRET: ADMIN_SECRET };
    let server: ServerProcess | undefined;
    const clients: MqttClient[] = [];
    try {
      server = await spawnServer(env);
      const admin = (await api(server.rest, 'POST', '/principals/auth', undefined, { id: 'admin', secret: ADMIN_SECRET })).body.accessToken;
      const devices = (
        await api(
          server.rest,
          'POST',
          '/principals',
          admin,
          Array.from({ length: 20 }, (_, i) => ({ type: 'device', id: `crash-${i}` })),
        )
      ).body.principals;
      const acked = new Set<string>();
      let sent = 0;
      for (const { principal, secret } of devices) {
        const client = await connectAsync(server.mqtt, { username: principal.id, password: secret, reconnectPeriod: 0, clientId: principal.id });
        client.on('error', () => {});
        clients.push(client);
      }
      // Each client keeps 20 QoS 1 publishes in flight until the server dies.
      let running = true;
      const pump = (client: MqttClient, id: string) => {
        if (!running || !client.connected) return;
        const messageId = `${id}-${sent++}`;
        client.publish(`devices/${id}/messages`, JSON.stringify({ id: messageId, type: 'telemetry', body: { speed: sent % 200 } }), { qos: 1 }, (err) => {
          if (!err) acked.add(messageId);
          pump(client, id);
        });
      };
      clients.forEach((client, i) => {
        for (let k = 0; k < 20; k++) pump(client, devices[i].principal.id);
      });
      while (acked.size < 3000) await new Promise((r) => setTimeout(r, 20));
      server.child.kill('SIGKILL');
      const { signal } = await exited(server.child);
      running = false;
      assert.equal(signal, 'SIGKILL');
      const ackedAtKill = new Set(acked);
      for (const c of clients) c.end(true);

      server = await spawnServer(env);
      const token = (await api(server.rest, 'POST', '/principals/auth', undefined, { id: 'admin', secret: ADMIN_SECRET })).body.accessToken;
      const stored = await allMessageIds(server.rest, token);
      const missing = [...ackedAtKill].filter((id) => !stored.has(id));
      assert.deepEqual(missing, [], `${missing.length} of ${ackedAtKill.size} acknowledged messages missing`);
      assert.ok(stored.size >= ackedAtKill.size);
      console.log(`      ${ackedAtKill.size} acknowledged before SIGKILL, ${stored.size} stored after restart, none missing`);
    } finally {
      for (const c of clients) c.end(true);
      if (server && server.child.exitCode === null) {
        server.child.kill('SIGTERM');
        await exited(server.child);
      }
      dir.remove();
    }
  });

  it('stops gracefully on SIGTERM with clients still connected, keeping what it acknowledged', async () => {
    const dir = tempDir();
    const env = { NITROGEN_DATA_DIR: dir.path, NITROGEN_ADMIN_SECRET: ADMIN_SECRET };
    try {
      let server = await spawnServer(env);
      const admin = (await api(server.rest, 'POST', '/principals/auth', undefined, { id: 'admin', secret: ADMIN_SECRET })).body.accessToken;
      const [{ principal, secret }] = (await api(server.rest, 'POST', '/principals', admin, { type: 'device', id: 'term-car' })).body.principals;
      const client = await connectAsync(server.mqtt, { username: principal.id, password: secret, reconnectPeriod: 0 });
      client.on('error', () => {});
      await client.publishAsync('devices/term-car/messages/telemetry', '{"v":1}', { qos: 1 });
      server.child.kill('SIGTERM');
      const { code } = await exited(server.child);
      assert.equal(code, 0, server.output());
      client.end(true);
      server = await spawnServer(env);
      const token = (await api(server.rest, 'POST', '/principals/auth', undefined, { id: 'admin', secret: ADMIN_SECRET })).body.accessToken;
      assert.equal((await api(server.rest, 'GET', '/messages?from=term-car', token)).body.messages.length, 1);
      server.child.kill('SIGTERM');
      await exited(server.child);
    } finally {
      dir.remove();
    }
  });
});
