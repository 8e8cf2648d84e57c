import assert from 'node:assert/strict';
import type { ClientError } from '../src/errors.js';
import { Outbox, type Carrier, type QueueLimits, type Sending } from '../src/outbox.js';
import { MemoryStore } from '../src/queue/queue-store.js';

/** A carrier with a window, which records what it was given. */
class FakeCarrier implements Carrier {
  sent: Sending[] = [];
  constructor(private window: number) {}
  room(): number {
    return this.window - this.sent.filter((s) => s.state === 1).length;
  }
  send(message: Sending): void {
    this.sent.push(message);
  }
  flush(): void {}
}

function outbox(limits: Partial<QueueLimits> = {}) {
  const events: string[] = [];
  const box = new Outbox(
    new MemoryStore(),
    { maxMessages: 100, maxBytes: 1e6, whenFull: 'reject', ...limits },
    {
      rejected: (id, error) => events.push(`rejected ${id} ${error.code}`),
      dropped: (id, error) => events.push(`dropped ${id} ${error.code}`),
    },
  );
  const add = (id: string, bytes = 10) => box.enqueue(id, `{"id":"${id}"}`, bytes);
  return { box, events, add };
}

const ids = (s: Sending[]) => s.map((m) => m.id);

describe('outbox: the outgoing queue', () => {
  it('gives the carrier messages in order within its window, and the next ones as acknowledgements come', async () => {
    const { box, add } = outbox();
    const carrier = new FakeCarrier(2);
    box.attach(carrier);
    const [a, b, c] = [add('a'), add('b'), add('c')];
    assert.deepEqual(ids(carrier.sent), ['a', 'b']);
    box.delivered(a);
    assert.deepEqual(ids(carrier.sent), ['a', 'b', 'c']);
    box.delivered(c); // out of order: c stays until b is done
    assert.equal(box.size, 2);
    box.delivered(b);
    assert.equal(box.size, 0);
    assert.deepEqual(await Promise.all([a, b, c]), ['a', 'b', 'c']);
    await box.drained();
  });

  it('sends again, in order and under the same ids, what was in flight when the connection was lost', () => {
    const { box, add } = outbox();
    const first = new FakeCarrier(2);
    box.attach(first);
    const a = add('a');
    add('b');
    add('c');
    box.delivered(a);
    box.attach(null);
    box.rewind();
    const second = new FakeCarrier(10);
    box.attach(second);
    assert.deepEqual(ids(second.sent), ['b', 'c']);
  });

  it('refuses a message when full, naming the limit, without throwing; nothing already queued is lost', async () => {
    const failure = async (s: Sending) =>
      (await s.then(
        () => null,
        (err: ClientError) => err,
      ))!;
    const { box, add, events } = outbox({ maxMessages: 2, maxBytes: 25 });
    add('a');
    add('b');
    const c = await failure(add('c'));
    assert.equal(c.code, 'NITROGEN_CLIENT_QUEUE_FULL');
    assert.equal(c.details?.limit, 'queue.maxMessages');
    assert.deepEqual(events, ['dropped c NITROGEN_CLIENT_QUEUE_FULL']);
    const bytes = outbox({ maxBytes: 25 });
    bytes.add('a');
    bytes.add('b');
    assert.equal((await failure(bytes.add('c'))).details?.limit, 'queue.maxBytes');
    assert.match((await failure(bytes.add('huge', 26))).message, /alone/);
    assert.equal(box.size, 2);
  });

  it('drops the oldest to make room when told to, and says so to its sender and in an event', async () => {
    const { box, add, events } = outbox({ maxMessages: 2, whenFull: 'drop-oldest' });
    const a = add('a');
    add('b');
    add('c');
    assert.equal(box.size, 2);
    const error = await a.then(
      () => null,
      (err: ClientError) => err,
    );
    assert.equal(error?.code, 'NITROGEN_CLIENT_DROPPED');
    assert.deepEqual(events, ['dropped a NITROGEN_CLIENT_DROPPED']);
    const carrier = new FakeCarrier(10);
    box.attach(carrier);
    assert.deepEqual(ids(carrier.sent), ['b', 'c']);
  });

  it('a message refused for good leaves the queue and its sender learns why; it is not sent again', async () => {
    const { box, add, events } = outbox();
    const carrier = new FakeCarrier(10);
    box.attach(carrier);
    const [a, b] = [add('a'), add('b')];
    const { ClientError } = await import('../src/errors.js');
    box.refused(b, new ClientError('NITROGEN_ERR_FORBIDDEN', 'no', undefined, 403));
    box.attach(null);
    box.rewind();
    const again = new FakeCarrier(10);
    box.attach(again);
    assert.deepEqual(ids(again.sent), ['a']);
    box.delivered(a);
    assert.equal(box.size, 0);
    assert.deepEqual(events, ['rejected b NITROGEN_ERR_FORBIDDEN']);
    assert.equal(
      (
        await b.then(
          () => null,
          (err: ClientError) => err,
        )
      )?.code,
      'NITROGEN_ERR_FORBIDDEN',
    );
  });

  it('fails what is still queued when closed', async () => {
    const { box, add } = outbox();
    const a = add('a');
    await box.close();
    assert.equal(
      (
        await a.then(
          () => null,
          (err: ClientError) => err,
        )
      )?.code,
      'NITROGEN_CLIENT_CLOSED',
    );
    assert.throws(
      () => add('b'),
      (err: ClientError) => err.code === 'NITROGEN_CLIENT_CLOSED',
    );
  });

  it('resolves `then` callbacks on a later microtask, as a promise does, and each awaiter gets the id', async () => {
    const { box, add } = outbox();
    const a = add('a');
    const order: string[] = [];
    const both = Promise.all([a.then((id) => order.push(`first ${id}`)), a.then((id) => order.push(`second ${id}`))]);
    box.attach(new FakeCarrier(1));
    box.delivered(a);
    order.push('after delivered');
    await both;
    assert.deepEqual(order, ['after delivered', 'first a', 'second a']);
    assert.equal(await a, 'a');
  });
});
