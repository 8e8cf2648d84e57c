import assert from 'node:assert/strict';
import { BatchingWriter } from '../core/batching-writer.js';

describe('BatchingWriter', () => {
  it('writes one batch at a time, in order, gathering what was pushed meanwhile', async () => {
    const batches: number[][] = [];
    let inFlight = 0;
    const writer = new BatchingWriter<number>(async (items) => {
      assert.equal(++inFlight, 1, 'two writes ran at once');
      batches.push(items);
      await new Promise((resolve) => setTimeout(resolve, 5));
      inFlight--;
    });
    // The first push starts a write at once; the ones made while it runs go together next.
    await Promise.all([1, 2, 3, 4].map((n) => writer.push(n)));
    assert.deepEqual(batches, [[1], [2, 3, 4]]);

    const later = writer.push(5);
    await new Promise((resolve) => setTimeout(resolve, 1));
    await Promise.all([later, writer.push(6), writer.push(7)]);
    assert.deepEqual(batches, [[1], [2, 3, 4], [5], [6, 7]]);
  });

  it('rejects only the pushes of a failed write, and goes on with the next', async () => {
    let calls = 0;
    const writer = new BatchingWriter<string>(async (items) => {
      calls++;
      await new Promise((resolve) => setTimeout(resolve, 5));
      if (items.includes('bad')) throw new Error('disk full');
    });
    const bad = writer.push('bad');
    const good = writer.push('good'); // queued behind the failing write
    await assert.rejects(bad, /disk full/);
    await good;
    assert.equal(calls, 2);
  });

  it('tells when it is idle', async () => {
    const done: number[] = [];
    const writer = new BatchingWriter<number>(async (items) => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      done.push(...items);
    });
    void writer.push(1);
    await writer.idle();
    assert.deepEqual(done, [1]);
    await writer.idle(); // nothing running: resolves at once
  });
});
