// TLS built in: MQTT over TLS authenticating devices by their client certificates (a test CA
// made here with openssl), MQTT over WebSockets (plain and over TLS), HTTPS, and certificate
// files reloaded on change. Real sockets, the `mqtt` npm client, and node's https client.
import assert from 'node:assert/strict';
import { copyFileSync, renameSync } from 'node:fs';
import { request } from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { connectAsync, type IClientOptions } from 'mqtt';
import { TestCa, selfSigned, type Issued } from './helpers/certificates.js';
import { nextMessage, startServer, type TestServer } from './helpers/server.js';
import { tempDir } from './helpers/temp.js';

describe('TLS: MQTT with client certificates, WebSockets, HTTPS', function () {
  this.timeout(30_000);
  const dir = tempDir();
  let ca: TestCa;
  let serverCert: Issued;
  let t: TestServer;

  before(async () => {
    ca = new TestCa(dir.path);
    serverCert = ca.issue('nitrogen', { server: true });
    // Served from copies, so the test can replace them as a renewal would.
    copyFileSync(serverCert.certFile, `${dir.path}/served.crt`);
    copyFileSync(serverCert.keyFile, `${dir.path}/served.key`);
    const tls = { cert: `${dir.path}/served.crt`, key: `${dir.path}/served.key`, reloadInterval: '100ms' };
    t = await startServer({
      plugins: [
        { use: 'mqtt', options: { port: 0, tlsPort: 0, wsPort: 0, wssPort: 0, tls } },
        { use: 'rest', options: { port: 0, tlsPort: 0, tls } },
      ],
    });
    await t.register([
      { type: 'device', id: 'car-1' },
      { type: 'device', id: 'car-2' },
      { type: 'app', id: 'dash' },
    ]);
    assert.equal((await t.api('POST', '/certificate-authorities', { body: { certificate: ca.ca.cert } })).status, 201);
  });
  after(async () => {
    await t?.stop();
    dir.remove();
  });

  const endpoint = (name: string) => t.server.endpoints[name]!;
  const secure = (client?: Issued): IClientOptions => ({ ca: ca.ca.cert, rejectUnauthorized: true, reconnectPeriod: 0, connectTimeout: 5000, ...(client ? { cert: client.cert, key: client.key } : {}) });

  /** The CONNACK refusal a connection attempt ends with (mqtt.js rejects with the return code as `code`). */
  async function refusedWith(url: string, options: IClientOptions): Promise<number> {
    const client = await connectAsync(url, options).then(
      (c) => c,
      (err: { code?: number }) => err,
    );
    if ('endAsync' in client) {
      await client.endAsync();
      assert.fail('connected');
    }
    return (client as { code: number }).code;
  }

  it('connects a device over TLS by its certificate from a registered authority, with no password', async () => {
    const device = await connectAsync(endpoint('mqtts'), { ...secure(ca.issue('car-1')), clientId: 'car-1-tls' });
    await device.publishAsync('devices/car-1/messages/telemetry', JSON.stringify({ speed: 50 }), { qos: 1 });
    const stored = await t.api('GET', '/messages?from=car-1&type=telemetry');
    assert.deepEqual(
      stored.body.messages.map((m: { body: unknown }) => m.body),
      [{ speed: 50 }],
    );
    const state = await t.api('GET', '/principals/car-1/state');
    assert.equal(state.body.presence.connected, true);
    assert.equal(state.body.presence.transport, 'mqtts');
    await device.endAsync();
  });

  it('refuses a revoked certificate, and revoking ends the connection it opened', async () => {
    const certificate = ca.issue('car-1');
    const device = await connectAsync(endpoint('mqtts'), { ...secure(certificate), clientId: 'car-1-revoked' });
    const closed = new Promise<void>((resolve) => device.once('close', () => resolve()));
    const fingerprint = new X509Certificate(certificate.cert).fingerprint256.replace(/:/g, '').toLowerCase();
    const revoked = await t.api('DELETE', `/principals/car-1/certificates/${fingerprint}`);
    assert.equal(revoked.status, 200);
    assert.ok(revoked.body.certificate.revokedAt);
    await closed;
    await device.endAsync(true);
    assert.equal(await refusedWith(endpoint('mqtts'), { ...secure(certificate), clientId: 'car-1-again' }), 4);
    // Another certificate from the same authority still works: revocation names one certificate.
    const fresh = await connectAsync(endpoint('mqtts'), { ...secure(ca.issue('car-1')), clientId: 'car-1-fresh' });
    await fresh.endAsync();
  });

  it("accepts a device's own registered certificate; refuses unknown ones and authority certificates naming an app", async () => {
    const own = selfSigned(dir.path, 'car-2');
    assert.equal(await refusedWith(endpoint('mqtts'), { ...secure(own), clientId: 'car-2-early' }), 4);
    assert.equal((await t.api('POST', '/principals/car-2/certificates', { body: { certificate: own.cert } })).status, 201);
    const device = await connectAsync(endpoint('mqtts'), { ...secure(own), clientId: 'car-2-own' });
    await device.endAsync();
    // An authority vouches for devices only.
    assert.equal(await refusedWith(endpoint('mqtts'), { ...secure(ca.issue('dash')), clientId: 'dash-cert' }), 4);
    // A user name that is not the certificate's principal is refused.
    assert.equal(await refusedWith(endpoint('mqtts'), { ...secure(ca.issue('car-1')), clientId: 'car-1-as-2', username: 'car-2' }), 4);
  });

  it('still takes a password over TLS, without a client certificate', async () => {
    const [app] = await t.register([{ type: 'app' }]);
    const client = await connectAsync(endpoint('mqtts'), { ...secure(), username: app!.id, password: app!.secret });
    await client.endAsync();
    assert.equal(await refusedWith(endpoint('mqtts'), { ...secure(), username: app!.id, password: 'wrong' }), 4);
  });

  it('carries MQTT over WebSockets: a device publishes, an app subscribed receives', async () => {
    const [device, app] = await t.register([{ type: 'device' }, { type: 'app' }]);
    await t.grant({ issuedTo: app!.id, principalFor: device!.id, action: 'subscribe', authorized: true });
    const subscriber = await connectAsync(endpoint('mqttWs'), { username: app!.id, password: app!.secret, reconnectPeriod: 0 });
    await subscriber.subscribeAsync(`devices/${device!.id}/messages/telemetry`, { qos: 1 });
    const publisher = await connectAsync(endpoint('mqttWs'), { username: device!.id, password: device!.secret, reconnectPeriod: 0 });
    const received = nextMessage(subscriber);
    await publisher.publishAsync(`devices/${device!.id}/messages/telemetry`, JSON.stringify({ rpm: 3000 }), { qos: 1 });
    assert.deepEqual((await received).payload.body, { rpm: 3000 });
    assert.equal((await t.api('GET', `/principals/${device!.id}/state`)).body.presence.transport, 'mqtt-ws');
    await Promise.all([subscriber.endAsync(), publisher.endAsync()]);
  });

  it('carries MQTT over WebSockets over TLS, a client certificate authenticating the device', async () => {
    const device = await connectAsync(endpoint('mqttWss'), { ...secure(ca.issue('car-1')), clientId: 'car-1-wss' });
    await device.publishAsync('devices/car-1/messages/wss', JSON.stringify(1), { qos: 1 });
    assert.equal((await t.api('GET', '/messages?from=car-1&type=wss')).body.messages.length, 1);
    await device.endAsync();
  });

  it('serves REST over HTTPS', async () => {
    const url = new URL(`${endpoint('https')}/headwaiter`);
    const body = await new Promise<string>((resolve, reject) => {
      request(url, { ca: ca.ca.cert }, (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk));
        res.on('end', () => resolve(text));
      })
        .on('error', reject)
        .end();
    });
    const { endpoints } = JSON.parse(body) as { endpoints: Record<string, string> };
    assert.match(endpoints.mqtts!, /^mqtts:\/\//);
    assert.match(endpoints.mqttWss!, /^wss:\/\/.*\/mqtt$/);
    assert.match(endpoints.https!, /^https:\/\//);
  });

  it('serves a renewed certificate once its files change, without a restart', async () => {
    const served = () =>
      new Promise<string>((resolve, reject) => {
        const url = new URL(endpoint('mqtts'));
        const socket = tlsConnect({ host: url.hostname, port: Number(url.port), ca: ca.ca.cert }, () => {
          resolve(socket.getPeerCertificate().fingerprint256);
          socket.destroy();
        }).on('error', reject);
      });
    const before = await served();
    const renewed = ca.issue('nitrogen', { server: true });
    // Written beside and moved in place, as a renewal tool does: never half a file.
    copyFileSync(renewed.keyFile, `${dir.path}/served.key.new`);
    copyFileSync(renewed.certFile, `${dir.path}/served.crt.new`);
    renameSync(`${dir.path}/served.key.new`, `${dir.path}/served.key`);
    renameSync(`${dir.path}/served.crt.new`, `${dir.path}/served.crt`);
    const expected = new X509Certificate(renewed.cert).fingerprint256;
    assert.notEqual(before, expected);
    let now = before;
    while (now !== expected) now = await served();
  });
});
