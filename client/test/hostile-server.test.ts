import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo, Server } from 'node:net';
import { connect, type ClientError, type Session } from '../src/index.js';
import { CONNACK_OK, scriptedServer } from './helpers/scripted-server.js';

const base = { url: 'http://127.0.0.1:9/api/v1', id: 'car-1', secret: 's', reconnect: { initialDelayMs: 20, maxDelayMs: 50 } };
const nextEvent = <T>(session: Session, event: 'offline' | 'online' | 'error') => new Promise<T>((resolve) => session.once(event, resolve as never));

describe('client against a hostile or broken server', function () {
  this.timeout(10_000);
  const servers: Array<Server | HttpServer> = [];
  const sessions: Session[] = [];
  afterEach(async () => {
    await Promise.all(sessions.splice(0).map((s) => s.close()));
    for (const s of servers.splice(0)) {
      (s as HttpServer).closeAllConnections?.();
      s.close();
    }
  });
  const track = (s: Session) => (sessions.push(s), s);

  it('refuses garbage instead of a CONNACK, and gives up on a server that never sends one', async () => {
    const garbage = await scriptedServer((socket) => socket.write(Buffer.from([0x00, 0x00])));
    const silent = await scriptedServer(() => {});
    servers.push(garbage.server, silent.server);
    const refused = (await connect({ ...base, mqtt: garbage.url }).catch((err: ClientError) => err)) as ClientError;
    assert.equal(refused.code, 'NITROGEN_CLIENT_PROTOCOL');
    const timedOut = (await connect({ ...base, mqtt: silent.url, connectTimeoutMs: 200 }).catch((err: ClientError) => err)) as ClientError;
    assert.equal(timedOut.code, 'NITROGEN_CLIENT_TIMEOUT');
    assert.equal(timedOut.details?.limit, 'connectTimeoutMs');
  });

  it('drops a connection that announces a huge packet, and reconnects', async () => {
    const peer = await scriptedServer((socket, type, _body, n) => {
      if (type !== 1) return;
      socket.write(CONNACK_OK);
      // The second connection behaves; the first announces a 268 MB PUBLISH and sends nothing of it.
      if (n === 1) socket.write(Buffer.from([0x30, 0xff, 0xff, 0xff, 0x7f]));
    });
    servers.push(peer.server);
    const session = track(await connect({ ...base, mqtt: peer.url, maxPacketBytes: 4096, waitForServer: false }));
    const error = await nextEvent<ClientError>(session, 'offline');
    assert.equal(error.code, 'NITROGEN_CLIENT_PROTOCOL');
    assert.match(error.message, /maxPacketBytes \(4096\)/);
    await nextEvent(session, 'online');
    assert.equal(peer.connections(), 2);
  });

  it('drops a connection whose server acknowledges a packet it was never sent', async () => {
    const peer = await scriptedServer((socket, type) => {
      if (type === 1) socket.write(Buffer.concat([CONNACK_OK, Buffer.from([0x40, 2, 0x12, 0x34])]));
    });
    servers.push(peer.server);
    const session = track(await connect({ ...base, mqtt: peer.url, waitForServer: false }));
    assert.match((await nextEvent<ClientError>(session, 'offline')).message, /PUBACK for packet id 4660/);
  });

  it('notices a server that stops answering, from its keepalive', async () => {
    const peer = await scriptedServer((socket, type) => type === 1 && socket.write(CONNACK_OK)); // no PINGRESP, ever
    servers.push(peer.server);
    const session = track(await connect({ ...base, mqtt: peer.url, keepaliveSeconds: 1 }));
    const error = await nextEvent<ClientError>(session, 'offline');
    assert.equal(error.code, 'NITROGEN_CLIENT_TIMEOUT');
    assert.equal(error.details?.limit, 'keepaliveSeconds');
  });

  it('holds at most `inflight` unacknowledged PUBLISHes and a bounded queue against a server that never acknowledges', async () => {
    let publishes = 0;
    let publishesBeforeSubscribe = -1;
    let subscribed!: () => void;
    const subscribeSeen = new Promise<void>((resolve) => (subscribed = resolve));
    const peer = await scriptedServer((socket, type) => {
      if (type === 1) socket.write(CONNACK_OK);
      if (type === 3) publishes++;
      if (type === 8) {
        publishesBeforeSubscribe = publishes;
        subscribed();
      }
    });
    servers.push(peer.server);
    const session = track(await connect({ ...base, mqtt: peer.url, inflight: 4, queue: { maxMessages: 10 } }));
    for (let n = 0; n < 10; n++) session.send({ type: 't', body: { n } });
    const refused = await session.send({ type: 't' }).then(
      () => null,
      (err: ClientError) => err,
    );
    assert.equal(refused?.details?.limit, 'queue.maxMessages');
    assert.equal(session.queued, 10);
    // A SUBSCRIBE sent after the sends arrives after every PUBLISH they made: four, the window.
    session.onMessage({}, () => {});
    await subscribeSeen;
    assert.equal(publishesBeforeSubscribe, 4);
  });

  it('cuts an SSE stream whose event never ends at maxEventBytes, and opens it again', async () => {
    let streams = 0;
    const http = createHttpServer((req, res) => {
      streams++;
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(': connected\n\ndata: ');
      const drip = setInterval(() => res.write('x'.repeat(1000)), 5);
      req.on('close', () => clearInterval(drip));
    });
    servers.push(http);
    http.listen(0, '127.0.0.1');
    await once(http, 'listening');
    const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/api/v1`;
    const session = track(await connect({ url, id: 'app', accessToken: 'a.b.c', transport: 'rest', maxEventBytes: 10_000, reconnect: { initialDelayMs: 20, maxDelayMs: 50 }, waitForServer: false }));
    const refused = nextEvent<ClientError>(session, 'error');
    const sub = session.onMessage({}, () => assert.fail('no event is whole'));
    await sub.ready;
    const error = await refused;
    assert.equal(error.code, 'NITROGEN_CLIENT_PROTOCOL');
    assert.equal(error.details?.limit, 'maxEventBytes');
    while (streams < 2) await once(http, 'request');
    await sub.close();
  });
});
