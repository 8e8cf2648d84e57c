import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import type { AddressInfo, Server } from 'node:net';
import { connect, type ClientError, type Session } from '../src/index.js';
import { connack, scriptedServer } from './helpers/scripted-server.js';

const base = { url: 'http://127.0.0.1:9/api/v1', id: 'car-1', secret: 's', waitForServer: false };

/** An HTTP server on port 0 answering every request with `answer`; resolves with its REST base URL. */
async function httpServer(servers: Array<Server | HttpServer>, answer: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const http = createServer(answer);
  servers.push(http);
  http.listen(0, '127.0.0.1');
  await once(http, 'listening');
  return `http://127.0.0.1:${(http.address() as AddressInfo).port}/api/v1`;
}

function nitrogenError(res: ServerResponse, status: number, code: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify({ error: { code, message: code } }));
}

/** Resolves once `n` times have been pushed to `times`. */
function nth(times: number[], n: number): { push(): void; reached: Promise<void> } {
  let reach!: () => void;
  const reached = new Promise<void>((resolve) => (reach = resolve));
  return {
    push: () => times.push(Date.now()) === n && reach(),
    reached,
  };
}

const gaps = (times: number[]) => times.slice(1).map((t, i) => t - times[i]!);

describe("client against the server's refusals: retry later, never again, Retry-After", function () {
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

  it("tries again after CONNACK 3, backing off; never again after CONNACK 2, whose client id is another's", async () => {
    const busyConnects: number[] = [];
    const sixth = nth(busyConnects, 6);
    const busy = await scriptedServer((socket, type) => {
      if (type !== 1) return;
      sixth.push();
      socket.end(connack(3));
    });
    const taken = await scriptedServer((socket, type) => type === 1 && socket.end(connack(2)));
    servers.push(busy.server, taken.server);
    const reconnect = { initialDelayMs: 20, maxDelayMs: 40 };
    const retrying = track(await connect({ ...base, mqtt: busy.url, reconnect }));
    const refused = track(await connect({ ...base, mqtt: taken.url, reconnect, clientId: 'someone-elses' }));
    const offline: ClientError[] = [];
    retrying.on('offline', (error) => offline.push(error as ClientError));
    const error = await new Promise<ClientError>((resolve) => refused.once('error', resolve));
    assert.equal(error.code, 'NITROGEN_CLIENT_ID_REJECTED');
    assert.equal(error.details?.returnCode, 2);
    assert.equal(error.retryable, false);
    // Subscribing needs a connection the session will no longer make.
    await assert.rejects(refused.onMessage({}, () => {}).ready, (err: ClientError) => err.code === 'NITROGEN_CLIENT_ID_REJECTED');

    // The same backoff had the other session come back five times meanwhile, none sooner than half a delay.
    await sixth.reached;
    assert.equal(taken.connections(), 1);
    for (const gap of gaps(busyConnects)) assert.ok(gap >= reconnect.initialDelayMs / 2, `attempts ${gap} ms apart`);
    assert.ok(offline.length >= 5);
    for (const e of offline) {
      assert.equal(e.code, 'NITROGEN_ERR_RATE_LIMITED');
      assert.equal(e.details?.returnCode, 3);
      assert.equal(e.retryable, true);
    }
  });

  it('waits what Retry-After asks, but never longer than reconnect.maxDelayMs', async () => {
    const polite: number[] = [];
    const politeTwice = nth(polite, 2);
    const politeUrl = await httpServer(servers, (req, res) => {
      req.resume();
      politeTwice.push();
      nitrogenError(res, 503, 'NITROGEN_ERR_OVERLOADED', { 'retry-after': '1' });
    });
    // Asking for 127 years: a timer cannot hold that (Node would fire it after 1 ms).
    const greedy: number[] = [];
    const greedyFourTimes = nth(greedy, 4);
    const greedyUrl = await httpServer(servers, (req, res) => {
      req.resume();
      greedyFourTimes.push();
      nitrogenError(res, 429, 'NITROGEN_ERR_RATE_LIMITED', { 'retry-after': '4000000000' });
    });
    const rest = { id: 'car-1', accessToken: 'a.b.c', transport: 'rest' as const, waitForServer: false };
    track(await connect({ ...rest, url: politeUrl, reconnect: { initialDelayMs: 20, maxDelayMs: 5000 } })).send({ type: 't' });
    track(await connect({ ...rest, url: greedyUrl, reconnect: { initialDelayMs: 20, maxDelayMs: 60 } })).send({ type: 't' });
    await Promise.all([politeTwice.reached, greedyFourTimes.reached]);
    assert.ok(gaps(polite)[0]! >= 990, `Retry-After: 1 honoured: ${gaps(polite)[0]} ms`);
    for (const gap of gaps(greedy)) assert.ok(gap >= 50, `capped at maxDelayMs, not spinning: ${gap} ms`);
  });

  it('opens again an SSE stream answered 408 (the request was slow to arrive) instead of giving it up', async () => {
    let streams = 0;
    const url = await httpServer(servers, (req, res) => {
      req.resume();
      if (++streams === 1) return nitrogenError(res, 408, 'NITROGEN_ERR_REQUEST_TIMEOUT', { connection: 'close' });
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(`event: message\ndata: ${JSON.stringify({ id: 'm1', from: 'car-1', type: 't', ts: new Date().toISOString(), body: 1 })}\n\n`);
    });
    const app = track(await connect({ url, id: 'app', accessToken: 'a.b.c', transport: 'rest', reconnect: { initialDelayMs: 20, maxDelayMs: 40 } }));
    app.on('error', (error) => assert.fail(`reported as a refusal: ${error.code}`));
    const received = new Promise((resolve) => app.onMessage({}, resolve));
    assert.equal(((await received) as { id: string }).id, 'm1');
    assert.equal(streams, 2);
  });
});
