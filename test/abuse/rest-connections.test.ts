// Issue item 6: 40 uploads of 15 MiB to /principals/auth held open took the server from 603 to
// 1,103 MiB; there was no connection cap; drip-fed headers lasted 87 s and drip-fed bodies 327 s.
// Now: a small body limit before authentication, a connection cap answered with 503, and header,
// request and keep-alive timeouts, each a rest plugin option. The timeouts are small here so each
// attack ends quickly; the last test checks the defaults are what docs/configuration.md says.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { parseDuration } from '../../core/duration.js';
import { ConfigSchema } from '../../core/config.js';
import { restPlugin } from '../../plugins/rest/index.js';
import { assertServesNormalDevice } from '../helpers/abuse.js';
import type { TestServer } from '../helpers/server.js';
import { RawConnection, startLoggedServer } from './rest-support.js';

const MiB = 1024 * 1024;

/** POSTs `total` bytes to `path` in chunks, without Content-Length; resolves with the answer. */
function chunkedUpload(t: TestServer, path: string, total: number): Promise<{ status: number; body: any; connection?: string }> {
  return new Promise((resolve, reject) => {
    let sent = 0;
    let answered = false;
    const req = request(`${t.restUrl}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
      answered = true;
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text), connection: res.headers.connection }));
    });
    // Writing on after the server answered and closed fails (EPIPE): the answer is what counts.
    let failure: Error | undefined;
    req.on('error', (err) => (failure = err));
    req.on('close', () => {
      if (failure && !answered) reject(failure);
    });
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    const pump = () => {
      while (sent < total) {
        sent += chunk.length;
        if (!req.write(chunk)) return void req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
}

describe('abuse: REST connections, body limits and timeouts', () => {
  it('refuses a login body over maxAuthBodyBytes at once, declared or streamed, while authenticated bodies keep their limit', async () => {
    const { t } = await startLoggedServer();
    try {
      // Declared: refused from the headers, before the 15 MiB are read.
      const declared = await t.api('POST', '/principals/auth', { token: null, raw: JSON.stringify({ id: 'x', secret: 'y'.repeat(15 * MiB) }) });
      assert.equal(declared.status, 413);
      assert.equal(declared.body.error.code, 'NITROGEN_ERR_PAYLOAD_TOO_LARGE');
      assert.match(declared.body.error.message, /4096 bytes/);
      assert.equal(declared.body.error.details.limit, 'maxAuthBodyBytes');
      // The attack: 40 uploads of 15 MiB started and held. Each is answered from its
      // headers and its connection closed by the server, so none holds memory or a descriptor.
      const held = await Promise.all(Array.from({ length: 40 }, () => RawConnection.open(t)));
      for (const connection of held) {
        connection.socket.write(`POST /api/v1/principals/auth HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${15 * MiB}\r\n\r\n{"id":"${'x'.repeat(1000)}`);
      }
      for (const connection of held) {
        const answer = await connection.response();
        assert.equal(answer.status, 413);
        assert.match(answer.headers, /Connection: close/i);
      }
      // Streamed without a length: refused once 4 KiB arrived, and the connection closed.
      const streamed = await chunkedUpload(t, '/principals/auth', 15 * MiB);
      assert.equal(streamed.status, 413);
      assert.equal(streamed.body.error.code, 'NITROGEN_ERR_PAYLOAD_TOO_LARGE');
      assert.equal(streamed.connection, 'close');
      // Unauthenticated requests elsewhere are refused from the headers, before any body.
      const protectedRoute = await chunkedUpload(t, '/messages', 2 * MiB);
      assert.equal(protectedRoute.status, 401);
      assert.equal(protectedRoute.connection, 'close');
      // An authenticated caller still sends a 1 MiB batch.
      const batch = Array.from({ length: 500 }, (_, i) => ({ type: 'telemetry', body: { i, pad: 'x'.repeat(2000) } }));
      const big = await t.api('POST', '/messages', { body: batch });
      assert.equal(big.status, 201, JSON.stringify(big.body).slice(0, 200));
      await assertServesNormalDevice(t);
    } finally {
      await t.stop();
    }
  });

  it('answers a connection beyond maxConnections with 503 and closes it, and serves again once connections close', async () => {
    const { t } = await startLoggedServer({ maxConnections: 8 });
    const held: RawConnection[] = [];
    try {
      // Connections the server took answer a request and stay open (keep-alive); one beyond the
      // cap is answered 503 and closed. Some of the 8 may be fetch's own keep-alive connections.
      let refused: RawConnection | undefined;
      for (let i = 0; i < 9 && !refused; i++) {
        const connection = await RawConnection.open(t);
        const status = await connection.get('/health');
        if (status === 503) refused = connection;
        else held.push(connection);
      }
      assert.ok(refused, 'no connection was refused');
      const answer = await refused.response();
      assert.equal(answer.status, 503);
      assert.equal(answer.body.error.code, 'NITROGEN_ERR_OVERLOADED');
      assert.equal(answer.body.error.details.limit, 'maxConnections');
      assert.match(answer.headers, /Retry-After: 1/);
      for (const connection of held) connection.close();
      await Promise.all(held.map((c) => c.closed));
      // The server sees the closes soon after the client does: wait for it to answer again.
      while (
        (await fetch(`${t.origin}/health`).then(
          (r) => r.status,
          () => 0,
        )) !== 200
      );
      await assertServesNormalDevice(t);
    } finally {
      for (const connection of held) connection.close();
      await t.stop();
    }
  });

  it('cuts off drip-fed headers after headersTimeout, and a silent connection too, with 408', async () => {
    const { t } = await startLoggedServer({ headersTimeout: 300, requestTimeout: 600 });
    try {
      const dripping = await RawConnection.open(t);
      const head = `GET /health HTTP/1.1\r\nHost: x\r\n${'X-Filler: y\r\n'.repeat(200)}\r\n`;
      const dripped = dripping.drip(head, 20);
      const silent = await RawConnection.open(t);
      for (const connection of [dripping, silent]) {
        const answer = await connection.response();
        assert.equal(answer.status, 408);
        assert.equal(answer.body.error.code, 'NITROGEN_ERR_REQUEST_TIMEOUT');
      }
      // Ended by the limit, not by the attacker running out of bytes (the whole drip takes 55 s).
      assert.ok(dripped.sent < head.length, 'the headers were read to their end');
      await assertServesNormalDevice(t);
    } finally {
      await t.stop();
    }
  });

  it('cuts off a drip-fed body after requestTimeout with 408', async () => {
    const { t } = await startLoggedServer({ headersTimeout: 300, requestTimeout: 600 });
    try {
      const dripping = await RawConnection.open(t);
      dripping.socket.write('POST /api/v1/principals/auth HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n{"id":"');
      const dripped = dripping.drip('x'.repeat(3990), 20);
      const answer = await dripping.response();
      assert.ok(dripped.sent < 3990, 'the body was read to its end');
      assert.equal(answer.status, 408);
      assert.equal(answer.body.error.code, 'NITROGEN_ERR_REQUEST_TIMEOUT');
      await assertServesNormalDevice(t);
    } finally {
      await t.stop();
    }
  });

  it('closes an idle keep-alive connection after keepAliveTimeout', async () => {
    const { t } = await startLoggedServer({ keepAliveTimeout: 200 });
    try {
      const connection = await RawConnection.open(t);
      connection.socket.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
      await connection.closed;
      assert.match(connection.received, /^HTTP\/1\.1 200 /, 'the request was served before the idle connection was closed');
      await assertServesNormalDevice(t);
    } finally {
      await t.stop();
    }
  });

  it('refuses request heads over maxHeaderBytes with 400 naming the limit', async () => {
    const { t } = await startLoggedServer({ maxHeaderBytes: 2048 });
    try {
      const connection = await RawConnection.open(t);
      connection.socket.write(`GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'y'.repeat(4096)}\r\n\r\n`);
      const answer = await connection.response();
      assert.equal(answer.status, 400);
      assert.equal(answer.body.error.details.limit, 'maxHeaderBytes');
      await assertServesNormalDevice(t);
    } finally {
      await t.stop();
    }
  });

  it('has the defaults docs/configuration.md gives, and refuses options that contradict each other', () => {
    const defaults = restPlugin.options!.parse({}) as Record<string, unknown>;
    const docs = readFileSync(new URL('../../../docs/configuration.md', import.meta.url), 'utf8');
    const section = docs.slice(docs.indexOf('### `rest`'), docs.indexOf('\n### ', docs.indexOf('### `rest`') + 1));
    const documented = new Map([...section.matchAll(/^\| `(\w+)` \| [^|]+ \| `([^`]+)`/gm)].map((m) => [m[1]!, m[2]!]));
    for (const [name, value] of Object.entries(defaults)) {
      assert.ok(documented.has(name), `rest option ${name} is not documented with its default`);
      assert.equal(documented.get(name), typeof value === 'string' ? `"${value}"` : String(value), `rest option ${name}`);
    }
    assert.deepEqual(
      { maxAuthBodyBytes: defaults.maxAuthBodyBytes, maxConnections: defaults.maxConnections, headersTimeout: parseDuration(defaults.headersTimeout as string), requestTimeout: parseDuration(defaults.requestTimeout as string) },
      { maxAuthBodyBytes: 4096, maxConnections: 4096, headersTimeout: 10_000, requestTimeout: 30_000 },
    );
    assert.ok(docs.includes('| `limits.maxJsonDepth` | integer 1–1000 | `64` |'), 'limits.maxJsonDepth is documented with its default');
    assert.equal(ConfigSchema.parse({}).limits.maxJsonDepth, 64);
    assert.equal(restPlugin.options!.safeParse({ headersTimeout: '1m', requestTimeout: '30s' }).success, false);
    assert.equal(restPlugin.options!.safeParse({ maxAuthBodyBytes: 10 }).success, false);
  });
});
