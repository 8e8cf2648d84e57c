// The client library's ways in for a device beyond a secret over plain TCP: MQTT over TLS (the
// server's certificate checked against a private authority), a client certificate that
// authenticates the device in the handshake, and self-registration with an API key, kept in a
// file across restarts. A real server with a test CA made by openssl; real sockets.
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { connect, register, registerOnce, type ClientError, type Session } from '@nitrogen/client';
import { TestCa, selfSigned, type Issued } from './helpers/certificates.js';
import { startServer, type TestServer } from './helpers/server.js';
import { tempDir } from './helpers/temp.js';

describe('client: TLS, client certificates and self-registration', function () {
  this.timeout(30_000);
  const dir = tempDir();
  let ca: TestCa;
  let t: TestServer;
  let mqtts: string;
  const sessions: Session[] = [];

  before(async () => {
    ca = new TestCa(dir.path);
    const served: Issued = ca.issue('nitrogen', { server: true });
    const tls = { cert: served.certFile, key: served.keyFile };
    t = await startServer({
      plugins: [
        { use: 'mqtt', options: { port: 0, tlsPort: 0, tls } },
        { use: 'rest', options: { port: 0 } },
      ],
    });
    mqtts = t.server.endpoints.mqtts!;
    assert.match(mqtts, /^mqtts:\/\//);
    assert.equal((await t.api('POST', '/certificate-authorities', { body: { certificate: ca.ca.cert } })).status, 201);
  });
  afterEach(async () => {
    await Promise.all(sessions.splice(0).map((s) => s.close()));
  });
  after(async () => {
    await t?.stop();
    dir.remove();
  });

  async function stored(from: string): Promise<unknown[]> {
    const res = await t.api('GET', `/messages?from=${from}`);
    return res.body.messages.map((m: { body: unknown }) => m.body);
  }

  it('sends over mqtts:// with the server checked against a private authority', async () => {
    const [car] = await t.register([{ type: 'device', id: 'tls-car' }]);
    const session = await connect({ url: t.restUrl, id: car!.id, secret: car!.secret, mqtt: mqtts, tls: { ca: ca.ca.cert } });
    sessions.push(session);
    await session.send({ type: 'telemetry', body: { speed: 42 } });
    assert.deepEqual(await stored('tls-car'), [{ speed: 42 }]);
  });

  it('refuses a server whose certificate no trusted authority signed, saying it is TLS', async () => {
    const [car] = await t.register([{ type: 'device', id: 'tls-doubter' }]);
    const other = new TestCa(dir.path, 'other-ca');
    const err = await connect({ url: t.restUrl, id: car!.id, secret: car!.secret, mqtt: mqtts, tls: { ca: other.ca.cert } }).then<ClientError, ClientError>(
      () => assert.fail('connected to a server it cannot trust'),
      (e: ClientError) => e,
    );
    assert.equal(err.code, 'NITROGEN_CLIENT_UNREACHABLE');
    assert.match(err.message, /TLS/);
  });

  it('authenticates a device by its client certificate: the handshake decides, not the password', async () => {
    const [car] = await t.register([{ type: 'device', id: 'cert-car' }]);
    const certificate = ca.issue('cert-car');
    // A wrong secret: only the certificate from the registered authority can have let it in.
    const session = await connect({ url: t.restUrl, id: car!.id, secret: 'not-the-secret', mqtt: mqtts, tls: { ca: ca.ca.cert, cert: certificate.cert, key: certificate.key } });
    sessions.push(session);
    await session.send({ type: 'telemetry', body: { by: 'certificate' } });
    assert.deepEqual(await stored('cert-car'), [{ by: 'certificate' }]);

    const stranger = selfSigned(dir.path, 'cert-car');
    const refused = await connect({ url: t.restUrl, id: car!.id, secret: 'not-the-secret', mqtt: mqtts, tls: { ca: ca.ca.cert, cert: stranger.cert, key: stranger.key } }).then<ClientError, ClientError>(
      () => assert.fail('a self-signed certificate and a wrong secret connected'),
      (e: ClientError) => e,
    );
    assert.equal(refused.code, 'NITROGEN_ERR_BAD_CREDENTIALS', refused.message);
  });

  it('refuses TLS options it cannot use, before connecting', async () => {
    await assert.rejects(connect({ url: t.restUrl, id: 'x', secret: 's', mqtt: mqtts, tls: { cert: 'only a certificate' } }), { code: 'NITROGEN_CLIENT_BAD_OPTIONS' });
    await assert.rejects(connect({ url: t.restUrl, id: 'x', secret: 's', mqtt: 'ws://127.0.0.1:1/' }), { code: 'NITROGEN_CLIENT_BAD_OPTIONS' });
  });

  it('registers a device with an API key once, keeps its credentials in a file, and connects with them', async () => {
    const [factory] = await t.register([{ type: 'app', id: 'factory-line' }]);
    const made = await t.api('POST', '/api-keys', { token: await t.token(factory!.id, factory!.secret), body: {} });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    const file = join(dir.path, 'registration.json');

    const first = await registerOnce({ url: t.restUrl, apiKey: made.body.key, id: 'self-made-1', file });
    assert.equal(first.id, 'self-made-1');
    assert.equal(statSync(file).mode & 0o777, 0o600, 'the file holds a secret');
    // A restart reads the file: no second registration (which would fail: the id is taken).
    const again = await registerOnce({ url: t.restUrl, apiKey: made.body.key, id: 'self-made-1', file });
    assert.deepEqual(again, first);

    const session = await connect({ url: t.restUrl, id: first.id, secret: first.secret });
    sessions.push(session);
    await session.send({ type: 'telemetry', body: { hello: 'from the factory' } });
    assert.deepEqual(await stored('self-made-1'), [{ hello: 'from the factory' }]);

    await assert.rejects(register({ url: t.restUrl, apiKey: `${made.body.key}x` }), { code: 'NITROGEN_ERR_BAD_CREDENTIALS' });
    await assert.rejects(register({ url: t.restUrl, apiKey: '' }), { code: 'NITROGEN_CLIENT_BAD_OPTIONS' });
  });
});
