import assert from 'node:assert/strict';
import { isNitrogenError } from '../../core/errors.js';
import type { Message } from '../../core/message.js';
import type { Sink } from '../../core/ports/sink.js';

/**
 * The Sink port's conformance suite, run by every Sink adapter against a real downstream.
 * `open` returns a started sink; `received` reads what the downstream got (decoded back into
 * envelopes); `outage` makes the downstream refuse or be unreachable until the returned function is called.
 */
export interface SinkHarness {
  open(): Promise<Sink>;
  close(sink: Sink): Promise<void>;
  received(count: number, timeoutMs?: number): Promise<Message[]>;
  outage?(): Promise<() => Promise<void>>;
}

let n = 0;
function message(fields: Partial<Message> = {}): Message {
  n++;
  return { id: `conf-${n}-${Date.now()}`, type: 'telemetry', from: `car-${n % 3}`, ts: new Date().toISOString(), body: { n, text: 'héllo ✓' }, ...fields };
}

export function sinkConformance(label: string, harness: SinkHarness): void {
  describe(`Sink conformance: ${label}`, function () {
    this.timeout(30_000);
    let sink: Sink;

    beforeEach(async () => {
      sink = await harness.open();
    });

    afterEach(() => harness.close(sink));

    it('has a name', () => {
      assert.equal(typeof sink.name, 'string');
      assert.ok(sink.name.length > 0);
    });

    it('delivers every message of a batch as its envelope, once send resolved', async () => {
      const batch = [message({ tags: ['a'] }), message({ to: 'app-1', responseTo: ['x'] }), message({ body: null })];
      await sink.send(batch);
      const got = await harness.received(3);
      assert.deepEqual(got.map((m) => m.id).sort(), batch.map((m) => m.id).sort());
      for (const m of batch)
        assert.deepEqual(
          got.find((g) => g.id === m.id),
          m,
        );
    });

    it('delivers a large batch', async () => {
      const batch = Array.from({ length: 500 }, () => message());
      await sink.send(batch);
      assert.equal((await harness.received(500)).length, 500);
    });

    if (harness.outage) {
      it('rejects as retryable while the downstream cannot take messages, and delivers once it can', async () => {
        const restore = await harness.outage!();
        const m = message();
        try {
          await assert.rejects(sink.send([m]), (err) => isNitrogenError(err, 'NITROGEN_ERR_SINK_RETRYABLE'));
        } finally {
          await restore();
        }
        let delivered = false;
        for (let attempt = 0; attempt < 50 && !delivered; attempt++) {
          try {
            await sink.send([m]);
            delivered = true;
          } catch (err) {
            assert.ok(isNitrogenError(err, 'NITROGEN_ERR_SINK_RETRYABLE'), String(err));
            await new Promise((r) => setTimeout(r, 200));
          }
        }
        assert.ok(delivered, 'delivered after the outage');
        assert.ok((await harness.received(1)).some((g) => g.id === m.id));
      });
    }
  });
}
