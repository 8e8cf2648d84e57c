import assert from 'node:assert/strict';
import type { Message } from '../src/envelope.js';
import type { ClientError } from '../src/errors.js';
import { CompiledFilter } from '../src/filter.js';
import { SseParser, type SseEvent } from '../src/sse.js';
import { Backoff } from '../src/backoff.js';

function parse(chunks: string[], max = 1000): { events: SseEvent[]; comments: string[] } {
  const events: SseEvent[] = [];
  const comments: string[] = [];
  const parser = new SseParser(
    max,
    (e) => events.push(e),
    (c) => comments.push(c),
  );
  for (const c of chunks) parser.push(c);
  return { events, comments };
}

describe('Server-Sent Events parser', () => {
  it('reads events as the HTML standard says: comments, multi-line data, CRLF, CR and LF, however split', () => {
    const stream = ': connected\r\n\r\nid: 1\r\nevent: message\r\ndata: {"a":\r\ndata:1}\r\n\r\n: heartbeat\n\ndata: two\rdata: lines\r\rdata:no-space\n\n';
    const expected = [
      { event: 'message', id: '1', data: '{"a":\n1}' },
      { event: 'message', id: '1', data: 'two\nlines' },
      { event: 'message', id: '1', data: 'no-space' },
    ];
    for (const size of [1, 2, 5, stream.length]) {
      const chunks = Array.from({ length: Math.ceil(stream.length / size) }, (_, i) => stream.slice(i * size, i * size + size));
      const { events, comments } = parse(chunks);
      assert.deepEqual(events, expected, `chunks of ${size}`);
      assert.deepEqual(comments, ['connected', 'heartbeat']);
    }
  });

  it('refuses an event or a line longer than maxEventBytes instead of buffering it', () => {
    assert.throws(
      () => parse(['data: ' + 'x'.repeat(2000)]),
      (err: ClientError) => err.code === 'NITROGEN_CLIENT_PROTOCOL' && err.details?.limit === 'maxEventBytes',
    );
    assert.throws(
      () => parse(Array.from({ length: 30 }, () => 'data: ' + 'x'.repeat(50) + '\n')),
      (err: ClientError) => err.code === 'NITROGEN_CLIENT_PROTOCOL',
    );
  });
});

describe('subscription filters', () => {
  const m = (fields: Partial<Message>): Message => ({ id: 'i', type: 'telemetry', from: 'car-1', ts: '2026-01-01T00:00:00.000Z', body: null, ...fields });

  it('become MQTT topics for senders and types, or recipients', () => {
    assert.deepEqual(new CompiledFilter({}).topics(), ['devices/+/messages/#']);
    assert.deepEqual(new CompiledFilter({ from: ['a', 'b'], type: 'x' }).topics(), ['devices/a/messages/x', 'devices/b/messages/x']);
    assert.deepEqual(new CompiledFilter({ to: 'me', from: 'a' }).topics(), ['devices/me/commands/#']);
  });

  it('become the query of GET /messages and the SSE stream', () => {
    assert.equal(new CompiledFilter({ from: ['a', 'b'], tag: 'eu', since: new Date(0) }).query(), 'from=a&from=b&tag=eu&since=1970-01-01T00%3A00%3A00.000Z');
  });

  it('test locally what topics cannot say: every tag, the time range, the sender of a command', () => {
    const f = new CompiledFilter({ tag: ['eu', 'x'], since: '2026-01-01T00:00:00Z', until: '2026-01-02T00:00:00Z' });
    assert.equal(f.matches(m({ tags: ['x', 'eu', 'y'] })), true);
    assert.equal(f.matches(m({ tags: ['eu'] })), false);
    assert.equal(f.matches(m({ tags: ['eu', 'x'], ts: '2026-01-02T00:00:00.000Z' })), false);
    assert.equal(new CompiledFilter({ to: 'me', from: 'a' }).matches(m({ to: 'me', from: 'b' })), false);
  });

  it('refuse ids that cannot be topic levels, naming the option', () => {
    assert.throws(
      () => new CompiledFilter({ from: 'a/#' }),
      (err: ClientError) => err.code === 'NITROGEN_CLIENT_BAD_OPTIONS' && err.details?.option === 'filter.from',
    );
  });
});

describe('reconnection backoff', () => {
  it('doubles up to the ceiling, each delay between half and all of it, and starts over after reset', () => {
    const low = new Backoff({ initialDelayMs: 100, maxDelayMs: 1000 }, () => 0);
    const high = new Backoff({ initialDelayMs: 100, maxDelayMs: 1000 }, () => 0.999999);
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6].map(() => low.next()),
      [50, 100, 200, 400, 500, 500],
    );
    assert.deepEqual(
      [1, 2, 3, 4, 5].map(() => Math.round(high.next())),
      [100, 200, 400, 800, 1000],
    );
    low.reset();
    assert.equal(low.next(), 50);
  });
});
