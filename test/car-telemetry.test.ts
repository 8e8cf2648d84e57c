import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Message } from '../core/message.js';
import { IDLE_RPM, TANK_L, TOP_SPEED_FACTOR, type Telemetry } from '../samples/car-telemetry/car.js';
import { LatencyHistogram } from '../samples/car-telemetry/histogram.js';
import { Route, SEATTLE_LOOP } from '../samples/car-telemetry/route.js';
import { runFleet, type IntervalReport, type SimulatorSummary } from '../samples/car-telemetry/simulator.js';
import { exited } from './helpers/process.js';
import { ADMIN_SECRET, startServer, type TestServer } from './helpers/server.js';
import { tempDir } from './helpers/temp.js';

const CARS = 20;
const SAMPLE_CONFIG = JSON.parse(readFileSync(fileURLToPath(new URL('../../samples/car-telemetry/nitrogen.config.json', import.meta.url)), 'utf8'));
const SIMULATOR = fileURLToPath(new URL('../samples/car-telemetry/simulator.js', import.meta.url));
const route = new Route();

/** Metres from (lat, lon) to the nearest stretch of the route, on a local flat projection. */
function metresFromRoute(lat: number, lon: number): number {
  const x = (l: number) => (l - lon) * 111_320 * Math.cos((lat * Math.PI) / 180);
  const y = (l: number) => (l - lat) * 110_574;
  let best = Infinity;
  for (let i = 0; i < SEATTLE_LOOP.length; i++) {
    const a = SEATTLE_LOOP[i]!;
    const b = SEATTLE_LOOP[(i + 1) % SEATTLE_LOOP.length]!;
    const [ax, ay, bx, by] = [x(a.lon), y(a.lat), x(b.lon), y(b.lat)];
    const t = Math.max(0, Math.min(1, -(ax * (bx - ax) + ay * (by - ay)) / ((bx - ax) ** 2 + (by - ay) ** 2)));
    best = Math.min(best, Math.hypot(ax + t * (bx - ax), ay + t * (by - ay)));
  }
  return best;
}

describe('samples/car-telemetry', function () {
  let server: TestServer;
  let dir: ReturnType<typeof tempDir>;
  let credentials: string;
  let first: SimulatorSummary;
  const reports: IntervalReport[] = [];
  let window: { start: number; end: number };

  async function messagesOf(id: string): Promise<Message[]> {
    const all: Message[] = [];
    let cursor: string | null = null;
    do {
      const res: { status: number; body: { messages: Message[]; next: string | null } } = await server.api('GET', `/messages?from=${id}&order=asc&limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      assert.equal(res.status, 200);
      all.push(...res.body.messages);
      cursor = res.body.next;
    } while (cursor);
    return all;
  }

  async function storedCount(prefix: string, cars: number): Promise<number> {
    let n = 0;
    for (let i = 0; i < cars; i++) n += (await messagesOf(`${prefix}-${i}`)).length;
    return n;
  }

  before(async () => {
    dir = tempDir();
    credentials = join(dir.path, 'fleet', 'credentials.json');
    // The sample's own server configuration, on free ports and a temporary data directory.
    const plugins = SAMPLE_CONFIG.plugins.map((p: { use: string; options: object }) => ({ ...p, options: { ...p.options, port: 0 } }));
    server = await startServer({ ...SAMPLE_CONFIG, plugins, log: { level: 'silent' } });
    window = { start: Date.now(), end: 0 };
    first = await runFleet({ rest: server.restUrl, adminSecret: ADMIN_SECRET, cars: CARS, driving: 1, duration: 3, reportEvery: 1, credentials, onReport: (r) => reports.push(r) });
    window.end = Date.now();
  });

  after(async () => {
    await server?.stop();
    dir?.remove();
  });

  it('registers the fleet in bulk, connects every car with its own credentials and reports', async () => {
    assert.deepEqual(first.errors, {});
    assert.equal(first.registered, CARS);
    assert.equal(first.reused, 0);
    assert.equal(first.connected, CARS);
    // Every car drives the whole run; a car whose trip ends starts the next one in the same tick.
    assert.ok(first.trips.started >= CARS, JSON.stringify(first.trips));
    assert.equal(first.trips.started - first.trips.ended, CARS);
    assert.ok(first.acked > 0);
    assert.equal(first.acked, first.sent);
    assert.equal(first.unacked, 0);
    assert.ok(
      reports.some((r) => r.connected === CARS && r.driving === CARS && r.ratePerS > 0 && r.latency !== null),
      JSON.stringify(reports),
    );
    const l = first.latency!;
    assert.equal(l.count, first.acked);
    assert.ok(l.p50 > 0 && l.p50 <= l.p99 && l.p99 <= l.max, JSON.stringify(l));
    const devices = await server.api('GET', '/principals?type=device&limit=1000');
    assert.equal(devices.body.principals.length, CARS);
    // Secrets are kept for the owner only.
    assert.equal(statSync(credentials).mode & 0o777, 0o600);
  });

  it('stores every acknowledged message in the envelope form, with plausible values', async () => {
    let stored = 0;
    const trips = { started: 0, ended: 0 };
    for (let i = 0; i < CARS; i++) {
      const messages = await messagesOf(`car-${i}`);
      stored += messages.length;
      assert.equal(messages[0]!.type, 'trip', `car-${i} starts with a trip event`);
      // A trip: its start event, its samples, and a stop event if it ended during the run (a
      // car's first trip may end at any moment; the next one then starts at once).
      let tripId: string | null = null;
      let samples = 0;
      let previous: { ts: number; t: Telemetry } | null = null;
      for (const m of messages) {
        const ts = Date.parse(m.ts);
        assert.ok(ts >= window.start && ts <= window.end, m.ts);
        if (m.type === 'trip') {
          const event = m.body as { event: string; tripId: string };
          if (event.event === 'start') {
            assert.equal(tripId, null, `car-${i} starts a trip before the last one stopped`);
            assert.deepEqual(Object.keys(event).sort(), ['event', 'fuelL', 'heading', 'lat', 'lon', 'odometerKm', 'tripId']);
            tripId = event.tripId;
            trips.started++;
            previous = null;
          } else {
            assert.equal(event.event, 'stop');
            assert.equal(event.tripId, tripId);
            tripId = null;
            trips.ended++;
          }
          continue;
        }
        assert.equal(m.type, 'telemetry');
        samples++;
        const t = m.body as Telemetry;
        assert.deepEqual(Object.keys(t).sort(), ['engineTempC', 'fuelL', 'gear', 'heading', 'lat', 'lon', 'odometerKm', 'rpm', 'speedKmh', 'tripId']);
        assert.equal(t.tripId, tripId, 'a sample belongs to the trip under way');
        assert.ok(t.speedKmh >= 0 && t.speedKmh <= TOP_SPEED_FACTOR * route.maxLimitKmh, `speed ${t.speedKmh}`);
        assert.ok(t.rpm >= IDLE_RPM && t.rpm < 4000 && t.gear >= 1 && t.gear <= 6, `rpm ${t.rpm} gear ${t.gear}`);
        assert.ok(t.fuelL > 0 && t.fuelL <= TANK_L && t.engineTempC >= 15 && t.engineTempC < 100, `fuel ${t.fuelL} temp ${t.engineTempC}`);
        assert.ok(metresFromRoute(t.lat, t.lon) < 1, `${t.lat},${t.lon} is off the route`);
        if (previous) {
          // `ts` is the sample time: exactly one interval (500 ms at 2 msg/s) after the last.
          assert.ok(Math.abs(ts - previous.ts - 500) <= 1, `${m.ts} after ${new Date(previous.ts).toISOString()}`);
          const metres = ((previous.t.speedKmh + t.speedKmh) / 2 / 3.6) * 0.5;
          assert.ok(Math.abs((t.odometerKm - previous.t.odometerKm) * 1000 - metres) <= 1.1, 'odometer follows speed');
          assert.ok(Math.abs(t.speedKmh - previous.t.speedKmh) <= 3.5 * 3.6 * 0.5 + 0.1, 'speed changes no faster than the car brakes');
          assert.ok(t.fuelL <= previous.t.fuelL && t.engineTempC >= previous.t.engineTempC, 'fuel goes down, a cold engine warms up');
        }
        previous = { ts, t };
      }
      assert.ok(samples >= 2, `car-${i} sent ${samples} samples`);
    }
    assert.equal(stored, first.acked);
    assert.deepEqual(trips, first.trips, 'the stored trip events are the ones the fleet counted');
  });

  it('reuses the stored credentials on the next run instead of registering again', async () => {
    // A wrong admin secret: any attempt to register would fail the run.
    const second = await runFleet({ rest: server.restUrl, adminSecret: 'not-the-admin-secret', cars: CARS, driving: 1, duration: 1.5, credentials });
    assert.deepEqual(second.errors, {});
    assert.equal(second.registered, 0);
    assert.equal(second.reused, CARS);
    assert.equal(second.connected, CARS);
    assert.equal(await storedCount('car', CARS), first.acked + second.acked);
  });

  it("drives the same fleet over raw sockets (--link raw, the benchmarks' load generator)", async () => {
    const raw = await runFleet({ link: 'raw', rest: server.restUrl, adminSecret: ADMIN_SECRET, cars: 3, driving: 1, duration: 1.5, prefix: 'raw', credentials: join(dir.path, 'raw.json') });
    assert.deepEqual(raw.errors, {});
    assert.equal(raw.connected, 3);
    assert.ok(raw.acked > 0);
    assert.equal(raw.acked, raw.sent);
    assert.equal(await storedCount('raw', 3), raw.acked);
  });

  it('takes the server\'s "retry later" (CONNACK 3) as a failed connection and connects the car later, on either link', async () => {
    // One failed login makes an id wait 2 s: someone guessed at the car's secret.
    const limited = await startServer({ credentials: { perPrincipal: { failures: 1, per: '2s' } }, log: { level: 'silent' } });
    try {
      for (const link of ['raw', 'library'] as const) {
        const cars = await limited.register([
          { type: 'device', id: `${link}-0` },
          { type: 'device', id: `${link}-1` },
        ]);
        const file = join(dir.path, `limited-${link}.json`);
        writeFileSync(file, JSON.stringify({ cars: Object.fromEntries(cars.map((c) => [c.id, c.secret])) }));
        assert.equal((await limited.api('POST', '/principals/auth', { token: null, body: { id: `${link}-0`, secret: 'a guess' } })).status, 401);
        const stop = new AbortController();
        const run = await runFleet({
          link,
          rest: limited.restUrl,
          cars: 2,
          prefix: link,
          credentials: file,
          driving: 1,
          duration: 0,
          reportEvery: 0.2,
          signal: stop.signal,
          onReport: (r) => r.connected === 2 && stop.abort(),
        });
        assert.equal(run.connected, 2, link);
        const kinds = Object.keys(run.errors);
        assert.ok(kinds.length > 0 && kinds.every((kind) => kind.startsWith('connect failed: ') && kind.includes('CONNACK 3')), `${link}: ${JSON.stringify(run.errors)}`);
      }
    } finally {
      await limited.stop();
    }
  });

  it('counts a connection the server drops, reconnects, and does not retry credentials it refuses', async () => {
    const stop = new AbortController();
    let disabled: Promise<{ status: number }> | undefined;
    let refused = false;
    const run = await runFleet({
      rest: server.restUrl,
      adminSecret: ADMIN_SECRET,
      cars: 3,
      driving: 1,
      duration: 0,
      reportEvery: 0.2,
      prefix: 'lost',
      credentials: join(dir.path, 'lost.json'),
      signal: stop.signal,
      onError: (kind) => {
        if (kind === 'CONNACK refused: not authorized') refused = true;
      },
      onReport: (r) => {
        // Disabling a principal closes its sessions; its reconnection is then refused.
        if (r.connected === 3 && !disabled) disabled = server.api('PATCH', '/principals/lost-0', { body: { enabled: false } });
        // Runs until the refusal was counted and a report after it shows the other two cars still connected.
        else if (refused && r.connected === 2) stop.abort();
      },
    });
    assert.equal((await disabled!).status, 200);
    assert.equal(run.errors['connection lost: closed by the server'], 1, JSON.stringify(run.errors));
    assert.equal(run.errors['CONNACK refused: not authorized'], 1, JSON.stringify(run.errors));
    assert.equal(run.connected, 3);
  });

  it('reads latency percentiles within 1/16 of the exact values from its fixed buckets', () => {
    const h = new LatencyHistogram();
    // 1 µs to about 9 s, log-uniform, shuffled; values are counted in whole µs, hence the 0.5 µs.
    const values = Array.from({ length: 20_000 }, (_, i) => 0.001 * 1.0008 ** i).sort(() => Math.random() - 0.5);
    for (const v of values) h.record(v);
    const sorted = [...values].sort((a, b) => a - b);
    for (const q of [0.01, 0.5, 0.9, 0.99, 0.999]) {
      const exact = sorted[Math.ceil(q * sorted.length) - 1]!;
      assert.ok(Math.abs(h.percentile(q) - exact) <= Math.max(exact / 16, 0.0005), `p${q * 100}: ${h.percentile(q)} ms, exactly ${exact} ms`);
    }
    assert.equal(h.count, values.length);
    assert.equal(h.max, sorted.at(-1));
  });

  it('runs from the command line, printing report lines and a summary but no secret', async () => {
    const file = join(dir.path, 'cli.json');
    const child = spawn(process.execPath, [SIMULATOR, '--rest', server.restUrl, '--cars', '3', '--driving', '1', '--duration', '1.5', '--report', '0.5', '--prefix', 'cli', '--credentials', file], {
      env: { ...process.env, NITROGEN_ADMIN_SECRET: ADMIN_SECRET },
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (out += d));
    assert.equal((await exited(child)).code, 0, out);
    assert.match(out, /connected +3\/3 +driving +3 +acked +\d+\/s +ack ms p50 [\d.]+/);
    assert.match(out, /summary\n {2}run .*3 cars \(3 registered, 0 reused\)/);
    assert.match(out, /errors +none/);
    const secrets = [ADMIN_SECRET, ...Object.values(JSON.parse(readFileSync(file, 'utf8')).cars as Record<string, string>)];
    for (const secret of secrets) assert.ok(!out.includes(secret), 'a secret was printed');
  });
});
