// Failure handling against real peers over real sockets: detach and close
// with errors, idle timeout both ways, SASL, and reconnect without loss.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EventContext } from 'rhea';
import { Client, ConnectionError, DisconnectedError, LinkError, Policy, SaslError, type Connection } from '../src/index.js';
import { Writer } from '../src/codec/encoder.js';
import { AMQP_HEADER, writeFrame } from '../src/frames.js';
import { OpenType } from '../src/performatives.js';
import { RheaPeer } from './helpers/rhea-peer.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const closedWith = (conn: Connection): Promise<Error | undefined> => new Promise((resolve) => conn.once('closed', resolve));

describe('AMQP client failure handling', () => {
  let peer: RheaPeer;
  let conn: Connection | undefined;
  afterEach(async () => {
    await conn?.close();
    conn = undefined;
    await peer?.stop();
  });

  it('rejects pending sends with LinkError carrying the condition when the peer detaches the link', async () => {
    peer = await RheaPeer.start({ creditWindow: 0 });
    let detach: () => void = () => undefined;
    peer.onLinkOpen = (ctx) => {
      detach = () => ctx.receiver!.close({ condition: 'amqp:unauthorized-access', description: 'no sending here' });
    };
    conn = await Client.connect(peer.url);
    const sender = await conn.createSender('forbidden');
    const pending = sender.send({ body: 1 });
    detach();
    await assert.rejects(pending, (e: unknown) => e instanceof LinkError && e.condition === 'amqp:unauthorized-access' && e.description === 'no sending here');
    assert.equal(sender.state, 'closed');
    await assert.rejects(sender.send({ body: 2 }), LinkError);
  });

  it('ends a receiver iteration with LinkError when the peer detaches it', async () => {
    peer = await RheaPeer.start();
    let detach: () => void = () => undefined;
    peer.onLinkOpen = (ctx) => {
      if (ctx.sender) detach = () => ctx.sender!.close({ condition: 'amqp:resource-deleted', description: 'queue deleted' });
    };
    conn = await Client.connect(peer.url);
    const receiver = await conn.createReceiver('gone');
    const next = receiver.receive();
    detach();
    await assert.rejects(next, (e: unknown) => e instanceof LinkError && e.condition === 'amqp:resource-deleted');
  });

  it('reports a peer close with an error and fails in-flight sends, without reconnecting', async () => {
    peer = await RheaPeer.start();
    peer.outcome = () => 'none';
    conn = await Client.connect(peer.url);
    const sender = await conn.createSender('x');
    const closed = closedWith(conn);
    const pending = sender.send({ body: 1 });
    await sleep(30);
    for (const c of peer.connections) c.close({ condition: 'amqp:internal-error', description: 'broker bug' });
    const err = await closed;
    assert.ok(err instanceof ConnectionError);
    assert.equal(err.condition, 'amqp:internal-error');
    assert.equal(err.description, 'broker bug');
    await assert.rejects(pending, (e: unknown) => e instanceof ConnectionError && e.condition === 'amqp:internal-error');
    assert.equal(conn.state, 'closed');
    conn = undefined;
  });

  it('keeps a connection alive with heartbeats when the peer has a short idle timeout', async () => {
    peer = await RheaPeer.start({ idleTimeout: 200 });
    conn = await Client.connect(peer.url);
    let dropped = false;
    conn.on('disconnected', () => {
      dropped = true;
    });
    await sleep(900);
    assert.equal(dropped, false);
    assert.equal(conn.state, 'open');
    const sender = await conn.createSender('alive');
    await sender.send({ body: 'still here' });
  });

  it('closes with ERR_AMQP_IDLE_TIMEOUT when the peer goes silent', async () => {
    // A raw peer that opens the connection and then never sends another byte.
    const server = net.createServer((socket) => {
      socket.once('data', () => {
        const w = new Writer();
        w.bytes(AMQP_HEADER);
        writeFrame(w, 0, 0, OpenType, { containerId: 'silent' });
        socket.write(w.toBuffer());
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    peer = undefined as unknown as RheaPeer;
    try {
      const c = new (await import('../src/connection.js')).Connection({ host: '127.0.0.1', port, tls: false }, Policy.derive(Policy.Default, { sasl: 'none', idleTimeout: 150, reconnect: { enabled: false } }));
      const closed = closedWith(c);
      const opened = c.open().catch((e: Error) => e); // the session never begins: the peer is silent
      const started = Date.now();
      const err = await closed;
      assert.ok(err instanceof ConnectionError);
      assert.equal(err.code, 'ERR_AMQP_IDLE_TIMEOUT');
      assert.equal(err.condition, 'amqp:resource-limit-exceeded');
      assert.ok(Date.now() - started < 1000);
      assert.ok((await opened) instanceof Error);
    } finally {
      server.close();
    }
  });

  describe('TLS', () => {
    let key = '';
    let cert = '';
    before(() => {
      // A throw-away self-signed certificate for 127.0.0.1.
      const dir = mkdtempSync(join(tmpdir(), 'nitrogen-amqp-tls-'));
      execFileSync(
        'openssl',
        ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')],
        { stdio: 'ignore' },
      );
      key = readFileSync(join(dir, 'key.pem'), 'utf8');
      cert = readFileSync(join(dir, 'cert.pem'), 'utf8');
      rmSync(dir, { recursive: true });
    });

    it('connects over amqps:// trusting the given CA, with SASL PLAIN inside TLS', async () => {
      peer = await RheaPeer.start({ tls: { key, cert }, plain: { user: 'u', pass: 'p' } });
      conn = await Client.connect(peer.url.replace('amqps://', 'amqps://u:p@'), Policy.Default, { tls: { ca: cert } });
      const sender = await conn.createSender('secure');
      await sender.send({ body: 'over TLS' });
      assert.equal(peer.received.get('secure')![0].body, 'over TLS');
    });

    it('refuses a server certificate it does not trust', async () => {
      peer = await RheaPeer.start({ tls: { key, cert } });
      await assert.rejects(Client.connect(peer.url), (e: unknown) => e instanceof ConnectionError && e.code === 'ERR_AMQP_SOCKET');
    });
  });

  describe('SASL PLAIN', () => {
    beforeEach(async () => {
      peer = await RheaPeer.start({ plain: { user: 'device', pass: 's3cret' } });
    });

    it('authenticates with the URL credentials', async () => {
      conn = await Client.connect(peer.url.replace('amqp://', 'amqp://device:s3cret@'));
      const sender = await conn.createSender('auth');
      await sender.send({ body: 1 });
    });

    it('accepts a custom mechanism through the SaslMechanism hook', async () => {
      let calls = 0;
      const mechanism = {
        name: 'PLAIN',
        initialResponse: () => {
          calls++;
          return Buffer.from('\0device\0s3cret');
        },
      };
      conn = await Client.connect(peer.url, Policy.Default, { sasl: mechanism });
      assert.equal(calls, 1);
    });

    it('rejects connect with SaslError on wrong credentials', async () => {
      await assert.rejects(Client.connect(peer.url.replace('amqp://', 'amqp://device:wrong@')), (e: unknown) => e instanceof SaslError && e.code === 'ERR_AMQP_SASL' && e.saslCode === 1 && e.condition === 'amqp:unauthorized-access');
    });

    it('rejects connect with SaslError when the mechanism is not offered', async () => {
      await assert.rejects(Client.connect(peer.url), (e: unknown) => e instanceof SaslError && /ANONYMOUS/.test(e.message));
    });
  });

  describe('reconnect', () => {
    const fast = { reconnect: { initialDelay: 10, maxDelay: 50 } };

    it('re-sends unsettled messages after the peer drops the socket: none lost', async () => {
      peer = await RheaPeer.start();
      let onThisSocket = 0;
      let drops = 0;
      peer.container.on('connection_open', () => {
        onThisSocket = 0;
      });
      const accepted = new Set<number>();
      // Drop the socket twice mid-stream, leaving messages unsettled on the wire.
      peer.outcome = (m) => {
        if (++onThisSocket === 150 && drops++ < 2) {
          peer.dropConnections();
          return 'none';
        }
        accepted.add(m.body as number);
        return 'accept';
      };
      conn = await Client.connect(peer.url, Policy.Default, fast);
      let reconnects = 0;
      conn.on('open', () => reconnects++);
      const sender = await conn.createSender('r');
      const n = 600;
      await Promise.all(Array.from({ length: n }, (_, i) => sender.send({ body: i })));
      for (let i = 0; i < n; i++) assert.ok(accepted.has(i), `message ${i} lost`);
      assert.ok(reconnects >= 2, `reconnected ${reconnects} times`);
      // The re-attached link keeps working both ways.
      const receiver = await conn.createReceiver('r', { credit: 5 });
      assert.notEqual(await receiver.receive(), null);
    });

    it('fails unsettled sends with DisconnectedError when policy says fail, and sends later ones', async () => {
      peer = await RheaPeer.start();
      peer.outcome = (m) => (m.body === 'hold' ? 'none' : 'accept');
      conn = await Client.connect(peer.url, Policy.Default, { ...fast, sender: { unsettledOnReconnect: 'fail' } });
      const sender = await conn.createSender('f');
      const held = sender.send({ body: 'hold' });
      await sleep(30);
      peer.dropConnections();
      await assert.rejects(held, (e: unknown) => e instanceof DisconnectedError && e.code === 'ERR_AMQP_DISCONNECTED');
      await sender.send({ body: 'after' });
      assert.equal(peer.received.get('f')!.at(-1)!.body, 'after');
    });

    it('gives up after maxAttempts and closes with the last error', async () => {
      peer = await RheaPeer.start();
      conn = await Client.connect(peer.url, Policy.Default, { reconnect: { initialDelay: 5, maxDelay: 5, maxAttempts: 2 } });
      const closed = closedWith(conn);
      await peer.stop();
      const err = await closed;
      assert.ok(err instanceof ConnectionError);
      assert.equal(conn.state, 'closed');
      conn = undefined;
      peer = await RheaPeer.start();
    });
  });
});

export type { EventContext };
