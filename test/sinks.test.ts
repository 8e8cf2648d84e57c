import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { DeadLetters } from '../core/dead-letters.js';
import { NitrogenError } from '../core/errors.js';
import type { Message } from '../core/message.js';
import { definePlugin } from '../core/plugin.js';
import type { Sink } from '../core/ports/sink.js';
import { defaultCatalog } from '../catalog.js';
import { startServer, type TestServer } from './helpers/server.js';
import { tempDir } from './helpers/temp.js';

/**
 * A Sink that records what it accepts and can be told to be down or to refuse a message.
 * It stands in for a downstream system only in these tests of the core's delivery logic;
 * the AMQP sinks are tested against real AMQP peers.
 */
class RecordingSink implements Sink {
  accepted: Message[] = [];
  down = false;
  refuseType?: string;
  sends = 0;
  constructor(readonly name: string) {}
  async send(batch: Message[]): Promise<void> {
    this.sends++;
    if (this.down) throw new NitrogenError('NITROGEN_ERR_SINK_RETRYABLE', 'downstream unreachable');
    const bad = batch.findIndex((m) => m.type === this.refuseType);
    if (bad >= 0) {
      this.accepted.push(...batch.slice(0, bad));
      throw new NitrogenError('NITROGEN_ERR_SINK_REJECTED', `downstream refused type ${this.refuseType}`, { details: { index: bad } });
    }
    this.accepted.push(...batch);
  }
}

/** A Sink whose sends stay open until the test settles them, in any order: for the runner's window. */
class GatedSink implements Sink {
  readonly sends: { batch: Message[]; accept: () => void }[] = [];
  constructor(readonly name: string) {}
  send(batch: Message[]): Promise<void> {
    return new Promise((accept) => this.sends.push({ batch, accept }));
  }
}

const sinks = new Map<string, RecordingSink>();
const gated = new Map<string, GatedSink>();
const recordingPlugin = definePlugin({ name: 'recording', kind: 'sink', create: ({ name }) => sinks.get(name) ?? sinks.set(name, new RecordingSink(name)).get(name)! });
const gatedPlugin = definePlugin({ name: 'gated', kind: 'sink', create: ({ name }) => gated.get(name) ?? gated.set(name, new GatedSink(name)).get(name)! });
const catalog = { ...defaultCatalog, sink: { recording: async () => recordingPlugin, gated: async () => gatedPlugin } };

async function until(check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`condition not met within ${ms} ms: ${check}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const fast = { batchSize: 50, lingerMs: 5, retryMinMs: 20, retryMaxMs: 100, pollMs: 50 };

describe('sinks fed from the store', function () {
  this.timeout(30_000);
  let t: TestServer;
  let token: string;

  async function send(body: unknown): Promise<void> {
    const res = await t.api('POST', '/messages', { token, body });
    assert.equal(res.status, 201, JSON.stringify(res.body));
  }

  afterEach(async () => {
    for (const sink of gated.values()) for (const s of sink.sends) s.accept();
    await t?.stop();
    sinks.clear();
    gated.clear();
  });

  async function start(config: object, dataDir?: string): Promise<void> {
    t = await startServer(config, dataDir, catalog);
    if ((await t.api('GET', '/principals/car-1')).status === 404) await t.register([{ type: 'device', id: 'car-1' }]);
    // The admin may impersonate: a token for car-1 without keeping its secret across restarts.
    token = (await t.api('POST', '/principals/car-1/impersonate')).body.accessToken;
  }

  it('delivers what each filter selects, and reports it', async () => {
    await start({
      sinks: [
        { use: 'recording', name: 'all', delivery: fast },
        { use: 'recording', name: 'telemetry', filter: { type: ['telemetry'] }, delivery: fast },
      ],
    });
    await send([
      { type: 'telemetry', body: 1 },
      { type: 'location', body: 2 },
      { type: 'telemetry', body: 3 },
    ]);
    await until(() => sinks.get('all')!.accepted.length === 3 && sinks.get('telemetry')!.accepted.length === 2);
    assert.deepEqual(
      sinks.get('telemetry')!.accepted.map((m) => m.body),
      [1, 3],
    );
    const status = await t.api('GET', '/sinks/telemetry');
    assert.equal(status.body.sink.delivered, 2);
    const metrics = (await t.api('GET', '/metrics')).body as string;
    assert.match(metrics, /nitrogen_sink_delivered_total\{sink="all"\} 3/);
    // The lag counts from the durable checkpoint, written after the sink accepted: wait for it.
    await until(async () => /^nitrogen_sink_lag_messages\{sink="all"\} 0$/m.test((await t.api('GET', '/metrics')).body));
  });

  it('keeps ingesting while a sink is down, and delivers everything when it is back, also after a restart', async () => {
    const dir = tempDir();
    try {
      await start({ sinks: [{ use: 'recording', name: 'flaky', delivery: fast }] }, dir.path);
      const sink = sinks.get('flaky')!;
      sink.down = true;
      for (let i = 0; i < 5; i++) await send(Array.from({ length: 20 }, (_, k) => ({ type: 'telemetry', id: `m-${i}-${k}` })));
      await until(() => sink.sends >= 3);
      // The first scrape has both lag gauges (prom-client collects them at once).
      const lagging = (await t.api('GET', '/metrics')).body as string;
      assert.match(lagging, /nitrogen_sink_lag_messages\{sink="flaky"\} 100/);
      const lagSeconds = Number(/^nitrogen_sink_lag_seconds\{sink="flaky"\} (\S+)$/m.exec(lagging)?.[1]);
      assert.ok(lagSeconds > 0 && lagSeconds < 60, `lag ${lagSeconds} s`);
      assert.match(lagging, /nitrogen_sink_retries_total\{sink="flaky"\} [1-9]/);
      assert.equal(sink.accepted.length, 0);
      await t.stop();
      sinks.clear();

      await start({ sinks: [{ use: 'recording', name: 'flaky', delivery: fast }] }, dir.path);
      const revived = sinks.get('flaky')!;
      await until(() => new Set(revived.accepted.map((m) => m.id)).size === 100);
      assert.equal(revived.accepted.length, 100, 'nothing delivered twice here');
    } finally {
      await t.stop();
      dir.remove();
    }
  });

  it('keeps several batches in flight, and moves the checkpoint only over batches accepted in feed order', async () => {
    const dir = tempDir();
    try {
      const delivery = { ...fast, batchSize: 10, lingerMs: 0, inFlight: 3, checkpointMs: 10 };
      await start({ sinks: [{ use: 'gated', name: 'window', delivery }] }, dir.path);
      const sink = gated.get('window')!;
      await send(Array.from({ length: 40 }, (_, i) => ({ type: 'telemetry', id: `w-${i}`, body: i })));
      // Three batches go out before any is accepted; the fourth waits for a free slot.
      await until(() => sink.sends.length === 3);
      assert.deepEqual(
        sink.sends.map((s) => s.batch.length),
        [10, 10, 10],
      );
      const position = async () => (await t.api('GET', '/sinks/window')).body.sink.position;
      // The later two are accepted first: the checkpoint must not pass the first, still unaccepted,
      // while the freed slot takes the fourth batch.
      sink.sends[2]!.accept();
      sink.sends[1]!.accept();
      await until(() => sink.sends.length === 4);
      assert.equal(await position(), null);
      // Once the first is accepted, the checkpoint moves over all three at once.
      sink.sends[0]!.accept();
      await until(async () => (await t.api('GET', '/sinks/window')).body.sink.delivered === 30);
      await until(async () => (await position()) !== null);
      const after30 = await position();
      // The fourth batch is in flight: the checkpoint stays after the third until it is accepted.
      assert.deepEqual(
        sink.sends[3]!.batch.map((m) => m.body),
        Array.from({ length: 10 }, (_, i) => 30 + i),
      );
      assert.equal(await position(), after30);
      sink.sends[3]!.accept();
      await until(async () => (await position()) !== after30);
    } finally {
      await t.stop();
      dir.remove();
    }
  });

  it('says degraded on /ready while a sink is past its lag bound, and with slow-acks holds acknowledgements back', async () => {
    const delivery = { ...fast, lagCheckMs: 100, maxLagMessages: 5, backpressure: 'slow-acks' };
    await start({ health: { probeInterval: '50ms' }, sinks: [{ use: 'gated', name: 'slow', delivery }] });
    const sink = gated.get('slow')!;
    const started = Date.now();
    await send(Array.from({ length: 10 }, (_, i) => ({ type: 'telemetry', id: `s-${i}` })));
    assert.ok(Date.now() - started < 5_000);
    await until(() => sink.sends.length === 1);
    const component = async () => ((await (await fetch(`${t.origin}/ready`)).json()) as any).components['sink:slow'];
    await until(async () => (await component()).status === 'degraded');
    assert.match((await component()).reason, /10 messages behind \(bound 5\)/);
    assert.match((await t.api('GET', '/metrics')).body, /^nitrogen_sink_over_lag_bound\{sink="slow"\} 1$/m);
    // Acknowledged still, but only after the gate's delay (100 ms): devices send more slowly.
    // (The gate looks at the lag at most every 100 ms: the first sends may still pass at once.)
    let late = 0;
    await until(async () => {
      const held = Date.now();
      await send({ type: 'telemetry', id: `s-late-${late++}` });
      return Date.now() - held >= 90;
    });
    for (const s of sink.sends) s.accept();
    await until(async () => (await component()).status === 'ok', 15_000);
    assert.match((await t.api('GET', '/metrics')).body, /^nitrogen_sink_latency_seconds_count\{sink="slow"\} [1-9]/m);
  });

  it('dead-letters a message the sink refuses for good, with the reason, and goes on', async () => {
    await start({ sinks: [{ use: 'recording', name: 'strict', delivery: fast }] });
    sinks.get('strict')!.refuseType = 'poison';
    await send([
      { type: 'ok', body: 1 },
      { type: 'poison', body: 2 },
      { type: 'ok', body: 3 },
    ]);
    await until(() => sinks.get('strict')!.accepted.length === 2);
    const letters = await t.api('GET', '/sinks/strict/dead-letters');
    assert.equal(letters.body.deadLetters.length, 1);
    assert.equal(letters.body.deadLetters[0].message.type, 'poison');
    assert.match(letters.body.deadLetters[0].reason, /refused type poison/);
    assert.match((await t.api('GET', '/metrics')).body, /nitrogen_sink_dead_lettered_total\{sink="strict"\} 1/);
  });

  it('writes dead letters off the event loop, in the order they were refused, each on disk before it resolves', async () => {
    const dir = tempDir();
    try {
      const letters = new DeadLetters(dir.path);
      const message = (i: number): Message => ({ id: `m-${i}`, type: 'poison', from: 'car-1', ts: new Date(Date.UTC(2026, 0, 1)).toISOString(), body: { i } });
      const writes = Array.from({ length: 50 }, (_, i) => letters.record('strict', message(i), `refused ${i}`));
      // Nothing is written while the event loop runs on: the writes wait for the thread pool.
      assert.deepEqual(letters.list('strict'), []);
      await Promise.all(writes);
      assert.deepEqual(
        letters.list('strict', 1000).map((l) => [l.message.id, l.reason]),
        Array.from({ length: 50 }, (_, i) => [`m-${i}`, `refused ${i}`]),
      );
      assert.equal(statSync(join(dir.path, 'dead-letters', 'strict.ndjson')).mode & 0o777, 0o600);
    } finally {
      dir.remove();
    }
  });

  it('replays a stored time range into a sink', async () => {
    await start({ sinks: [{ use: 'recording', name: 'late', filter: { type: ['telemetry'] }, delivery: fast }] });
    await send([
      { type: 'telemetry', ts: '2026-01-01T00:00:00Z', body: 'old' },
      { type: 'telemetry', ts: '2026-02-01T00:00:00Z', body: 'in range' },
      { type: 'location', ts: '2026-02-02T00:00:00Z', body: 'filtered out' },
    ]);
    const sink = sinks.get('late')!;
    await until(() => sink.accepted.length === 2);
    const res = await t.api('POST', '/sinks/late/replay', { body: { since: '2026-01-15T00:00:00Z', until: '2026-03-01T00:00:00Z' } });
    assert.equal(res.status, 202);
    await until(() => sink.accepted.length === 3);
    assert.equal(sink.accepted[2]!.body, 'in range');
    const status = await t.api('GET', '/sinks/late');
    assert.deepEqual(
      status.body.sink.replays.map((r: any) => [r.state, r.sent]),
      [['done', 1]],
    );
    assert.equal((await t.api('POST', '/sinks/late/replay', { body: { since: 'soon' } })).status, 400);
    assert.equal((await t.api('POST', '/sinks/nope/replay', { body: {} })).status, 404);
    assert.equal((await t.api('GET', '/sinks', { token })).status, 403);
  });

  it('in ack "sink" mode answers only once the sink accepted, and keeps nothing', async () => {
    await start({ ack: 'sink', store: { use: 'none' }, sinks: [{ use: 'recording', name: 'pass' }] });
    const sink = sinks.get('pass')!;
    await send({ type: 'telemetry', body: 'through' });
    assert.deepEqual(
      sink.accepted.map((m) => m.body),
      ['through'],
      'accepted before the 201',
    );
    sink.down = true;
    const refused = await t.api('POST', '/messages', { token, body: { type: 'telemetry' } });
    assert.equal(refused.status, 502);
    assert.equal(refused.body.error.code, 'NITROGEN_ERR_SINK_RETRYABLE');
    const query = await t.api('GET', '/messages');
    assert.equal(query.status, 503);
    assert.equal(query.body.error.code, 'NITROGEN_ERR_UNAVAILABLE');
  });
});
