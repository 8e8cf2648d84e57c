// Issue items 10 (REST part) and 15 (REST part): every 503 of backpressure was logged at error
// level (1,263 lines in 10 s); client aborts were logged at error level with stacks; refused JSON
// logged the first bytes of the payload ("password=S…"). Client mistakes and departures are
// now logged at debug without stacks, saturation as one warning per 10 s, and no log line nor
// error message quotes a payload.
import assert from 'node:assert/strict';
import { assertServesNormalDevice } from '../helpers/abuse.js';
import { ERROR, RawConnection, startLoggedServer, WARN, type LogLine } from './rest-support.js';

const SECRET_PAYLOAD = 'password=S3cr3t-hunter2&user=alice';

/** Waits until the server has logged a line matching `match`; a server that never does fails by the test's timeout. */
async function logged(logs: LogLine[], match: (line: LogLine) => boolean): Promise<LogLine> {
  for (;;) {
    const line = logs.find(match);
    if (line) return line;
    await new Promise((resolve) => setImmediate(resolve));
  }
}

describe('abuse: what REST logs under attack', () => {
  it('answers a flood of POSTs beyond ingest.maxPending with 503 and logs one warning, never an error', async () => {
    const { t, logs } = await startLoggedServer({}, { ingest: { maxPending: 1 } });
    try {
      const statuses: number[] = [];
      // Rounds of 50 concurrent single-message POSTs, until the saturation shows.
      while (!statuses.includes(503)) {
        const round = await Promise.all(Array.from({ length: 50 }, (_, i) => t.api('POST', '/messages', { body: { type: 'telemetry', body: { i } } })));
        for (const res of round) {
          statuses.push(res.status);
          if (res.status === 503) {
            assert.equal(res.body.error.code, 'NITROGEN_ERR_OVERLOADED');
            assert.equal(res.headers.get('retry-after'), '1');
          }
        }
      }
      assert.deepEqual([...new Set(statuses)].sort(), [201, 503]);
      assert.deepEqual(
        logs.filter((l) => l.level >= ERROR),
        [],
        'backpressure is not an error',
      );
      const warnings = logs.filter((l) => l.level === WARN && /saturated/.test(l.msg));
      assert.equal(warnings.length, 1, 'one warning per 10 s, however many 503s');
      assert.equal(logs.filter((l) => l.code === 'NITROGEN_ERR_OVERLOADED').length, statuses.filter((s) => s === 503).length, 'each 503 at debug');
      await assertServesNormalDevice(t);
    } finally {
      await t.stop();
    }
  });

  it('logs a client that aborts mid-body at debug, without a stack', async () => {
    const { t, logs } = await startLoggedServer();
    try {
      for (const [path, token] of [
        ['/api/v1/messages', t.adminToken],
        ['/api/v1/principals/auth', null],
      ] as const) {
        const connection = await RawConnection.open(t);
        // With Expect: 100-continue node answers "100 Continue" as it hands the request to koa:
        // the abort then comes while the request is being served.
        connection.socket.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 3000\r\nExpect: 100-continue\r\n${token ? `Authorization: Bearer ${token}\r\n` : ''}\r\n`);
        while (!connection.received.includes('100 Continue')) await new Promise((resolve) => connection.socket.once('data', resolve));
        connection.socket.write('{"type":"');
        connection.close();
        await logged(logs, (l) => /client closed the connection/.test(l.msg) && l.path === path);
      }
      const loud = logs.filter((l) => l.level >= WARN);
      assert.deepEqual(loud, [], `aborts logged loudly: ${JSON.stringify(loud).slice(0, 300)}`);
      assert.ok(!JSON.stringify(logs).includes('"stack"'), 'no stack for a client leaving');
      await assertServesNormalDevice(t);
    } finally {
      await t.stop();
    }
  });

  it('never quotes a refused payload in its answer or in any log line, over REST or MQTT', async () => {
    const { t, logs } = await startLoggedServer();
    try {
      const [device] = await t.register([{ type: 'device', id: 'sloppy-device' }]);
      const deviceToken = await t.token(device!.id, device!.secret);
      for (const [path, token] of [
        ['/principals/auth', null],
        ['/messages', deviceToken],
        ['/principals', t.adminToken],
      ] as const) {
        const res = await t.api('POST', path, { token, raw: SECRET_PAYLOAD, headers: { 'content-type': 'application/json' } });
        assert.equal(res.status, 400, path);
        assert.equal(res.body.error.code, 'NITROGEN_ERR_MALFORMED_JSON', path);
        assert.ok(!JSON.stringify(res.body).includes('S3cr3t') && !JSON.stringify(res.body).includes('password='), `${path} answered ${JSON.stringify(res.body)}`);
      }
      const client = await t.mqtt(device!.id, device!.secret);
      const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
      client.publish(`devices/${device!.id}/messages/telemetry`, SECRET_PAYLOAD, { qos: 1 });
      await closed;
      await client.endAsync(true);
      await logged(logs, (l) => l.code === 'NITROGEN_ERR_MALFORMED_JSON' && /mqtt/.test(l.msg));
      const text = JSON.stringify(logs);
      assert.ok(!text.includes('S3cr3t') && !text.includes('password='), 'a log line quotes the payload');
      assert.deepEqual(
        logs.filter((l) => l.level >= WARN),
        [],
      );
      await assertServesNormalDevice(t);
    } finally {
      await t.stop();
    }
  });
});
