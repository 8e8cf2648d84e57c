import { Car } from './car.js';
import type { CarLink, Endpoint, LinkFactory, LinkListener } from './car-link.js';
import type { CarCredentials } from './credentials.js';
import { LatencyHistogram, type Percentiles } from './histogram.js';
import { Route } from './route.js';

export interface FleetSettings {
  driving: number;
  rate: number;
  /** Seconds; 0 runs until `signal` aborts. */
  duration: number;
  connectRate: number;
  sources: string[];
  qos: 0 | 1;
  tripMinutes: number;
  reportEvery: number;
  signal?: AbortSignal;
  onReport?: (report: IntervalReport) => void;
  /** Each error as it is counted (the summary totals them by kind). */
  onError?: (kind: string, count: number) => void;
}

/** One line of live figures, every `reportEvery` seconds. */
export interface IntervalReport {
  elapsedS: number;
  connected: number;
  driving: number;
  /** Acknowledged (QoS 1) or sent (QoS 0) messages per second over the interval. */
  ratePerS: number;
  /** Acknowledged (or at QoS 0 sent) since the start. */
  delivered: number;
  /** CPU time of the simulator process since it started (user + system, µs): with `delivered`, its CPU per message between two reports. */
  cpuMicros: number;
  /** Ack latency over the interval in ms, null at QoS 0 or when nothing was acknowledged. */
  latency: { p50: number; p99: number; max: number } | null;
  errors: number;
}

export interface FleetRun {
  seconds: number;
  /** Most cars connected at once. */
  connected: number;
  sent: number;
  acked: number;
  /** Sent but neither acknowledged nor lost with a connection by the end of the drain. */
  unacked: number;
  /** Acknowledged (or at QoS 0 sent) per second, over the run and since all cars were connected. */
  ratePerS: number;
  steadyRatePerS: number | null;
  latency: Percentiles | null;
  trips: { started: number; ended: number };
  errors: Record<string, number>;
  /**
   * The simulator's own cost: CPU as a share of one core over the run (`kernelShare` the part
   * spent in system calls, mostly the sockets'); peak RSS, its growth since the cars were made, heap, in MiB.
   */
  cost: { cpuCoreShare: number; kernelShare: number; rssMiB: number; rssGrowthMiB: number; heapMiB: number };
}

const TICK_MS = 50;
const KEEPALIVE_S = 60;
/** As mqtt.js: a server that is slow to answer CONNECT under load is not given up on too early. */
const CONNECT_TIMEOUT_MS = 30_000;
/**
 * CONNECTs awaiting their CONNACK at most: the ramp slows to the pace the server answers at,
 * instead of piling up connections that time out, reconnect and take over each other's sessions.
 */
const MAX_CONNECTING = 1000;
const RECONNECT_MS = 2_000;
/** A car more than this behind its schedule skips the missed samples rather than sending a burst. */
const MAX_LAG_MS = 1_000;
const DRAIN_MS = 5_000;
const MiB = 2 ** 20;
const cpuMicros = () => {
  const { user, system } = process.cpuUsage();
  return user + system;
};

/** A car of the fleet: its model, its connection and its place in the schedule. */
class FleetCar implements LinkListener {
  readonly link: CarLink;
  /** `reconnecting`: the link lost its connection and comes back by itself. */
  state: 'waiting' | 'connecting' | 'reconnecting' | 'online' | 'refused' = 'waiting';
  connectStartedAt = 0;
  retryAt = 0;
  driving = false;
  trips = 0;
  tripEndsAt = 0;
  nextSampleAt = 0;
  lastSampleAt = 0;
  /** Index in the fleet's list of parked cars, -1 when not parked. */
  parkedSlot = -1;

  constructor(
    readonly index: number,
    readonly credentials: CarCredentials,
    readonly car: Car,
    private readonly fleet: Fleet,
    link: LinkFactory,
  ) {
    this.link = link(this);
  }

  onConnected(): void {
    this.fleet.online(this);
  }
  onRefused(returnCode: number): void {
    this.state = 'refused';
    const why = returnCode === 4 ? 'bad username or password' : returnCode === 5 ? 'not authorized' : `return code ${returnCode}`;
    this.fleet.error(`CONNACK refused: ${why}`);
  }
  onAck(latencyMs: number): void {
    this.fleet.acked(latencyMs);
  }
  onError(kind: string): void {
    this.fleet.error(kind);
  }
  onClosed(reason: string | null, unacked: number, reconnecting: boolean): void {
    this.fleet.offline(this, reason, unacked, reconnecting);
  }
}

/**
 * Drives every car from one timer: each tick opens the connections the connect rate allows,
 * ends trips that are due, has each driving car send the samples it is due, keeps parked
 * cars' connections alive, and starts trips on random parked cars until the driving share is
 * reached. Sample times are scheduled per car (`1 / rate` apart, phases spread at random), so
 * the load is even and the `ts` of consecutive samples is exactly one interval apart.
 */
export class Fleet {
  private readonly cars: FleetCar[];
  private readonly parked: FleetCar[] = [];
  private readonly intervalMs: number;
  private readonly rssBefore = process.memoryUsage.rss();
  private connectBudget = 0;
  private onlineCount = 0;
  private maxOnline = 0;
  private openSockets = 0;
  private drivingCount = 0;
  private running = false;
  private sent = 0;
  private ackCount = 0;
  private lost = 0;
  private tripsStarted = 0;
  private tripsEnded = 0;
  private readonly errors = new Map<string, number>();
  private errorCount = 0;
  private readonly intervalLatency = new LatencyHistogram();
  private readonly totalLatency = new LatencyHistogram();
  private startedAt = 0;
  private lastTickAt = 0;
  private allOnline: { at: number; delivered: number } | null = null;
  private last = { at: 0, delivered: 0, errors: 0 };
  private peakRss = 0;

  constructor(
    credentials: CarCredentials[],
    private readonly endpoint: Endpoint,
    private readonly settings: FleetSettings,
    link: LinkFactory,
  ) {
    const route = new Route();
    this.cars = credentials.map((c, i) => new FleetCar(i, c, new Car(route), this, link));
    this.intervalMs = 1000 / settings.rate;
  }

  /** Connects and drives the fleet for the set duration (or until aborted), drains acknowledgements, disconnects. */
  async run(): Promise<FleetRun> {
    const cpu = process.cpuUsage();
    this.startedAt = this.lastTickAt = this.last.at = performance.now();
    this.running = true;
    const timer = setInterval(() => this.tick(), TICK_MS);
    await new Promise<void>((resolve) => {
      const done = () => {
        clearInterval(timer);
        clearTimeout(deadline);
        this.running = false;
        resolve();
      };
      const deadline = this.settings.duration > 0 ? setTimeout(done, this.settings.duration * 1000) : undefined;
      if (this.settings.signal?.aborted) done();
      this.settings.signal?.addEventListener('abort', done, { once: true });
    });
    const seconds = (performance.now() - this.startedAt) / 1000;
    await this.waitFor(() => this.inflight() === 0, DRAIN_MS);
    const delivered = this.delivered();
    this.peakRss = Math.max(this.peakRss, process.memoryUsage.rss());
    const { user, system } = process.cpuUsage(cpu);
    const wallMs = performance.now() - this.startedAt;
    const heap = process.memoryUsage().heapUsed;
    await this.disconnectAll();
    this.totalLatency.add(this.intervalLatency);
    const steady = this.allOnline && seconds * 1000 > this.allOnline.at - this.startedAt ? this.allOnline : null;
    return {
      seconds,
      connected: this.maxOnline,
      sent: this.sent,
      acked: this.ackCount,
      unacked: this.inflight(),
      ratePerS: delivered / seconds,
      steadyRatePerS: steady ? (delivered - steady.delivered) / (seconds - (steady.at - this.startedAt) / 1000) : null,
      latency: this.totalLatency.count > 0 ? this.totalLatency.summary() : null,
      trips: { started: this.tripsStarted, ended: this.tripsEnded },
      errors: Object.fromEntries(this.errors),
      cost: { cpuCoreShare: (user + system) / 1e3 / wallMs, kernelShare: system / 1e3 / wallMs, rssMiB: this.peakRss / MiB, rssGrowthMiB: (this.peakRss - this.rssBefore) / MiB, heapMiB: heap / MiB },
    };
  }

  error(kind: string, n = 1): void {
    this.errors.set(kind, (this.errors.get(kind) ?? 0) + n);
    this.errorCount += n;
    this.settings.onError?.(kind, n);
  }

  acked(latencyMs: number): void {
    this.ackCount++;
    this.intervalLatency.record(latencyMs);
  }

  online(car: FleetCar): void {
    car.state = 'online';
    this.onlineCount++;
    this.maxOnline = Math.max(this.maxOnline, this.onlineCount);
    this.park(car);
    if (!this.allOnline && this.onlineCount === this.cars.length) this.allOnline = { at: performance.now(), delivered: this.delivered() };
  }

  offline(car: FleetCar, reason: string | null, unacked: number, reconnecting: boolean): void {
    // A link that reconnects by itself keeps its place until it is closed for good.
    if (!reconnecting) this.openSockets--;
    if (car.state === 'online') {
      this.onlineCount--;
      if (car.driving) {
        car.driving = false; // the trip is cut short: no stop event without a connection
        this.drivingCount--;
      } else this.unpark(car);
    }
    if (reason !== null) this.error(car.state === 'online' ? `connection lost: ${reason}` : `connect failed: ${reason}`);
    if (unacked > 0) {
      this.lost += unacked;
      this.error('PUBLISH without PUBACK when the connection closed', unacked);
    }
    if (car.state === 'refused') return;
    if (reconnecting) {
      car.state = 'reconnecting';
      return;
    }
    if (!this.running) return;
    // Cars reconnect, as a car's modem would; cars the server refused (credentials, client id) are not retried.
    car.state = 'waiting';
    car.retryAt = performance.now() + RECONNECT_MS;
  }

  private delivered(): number {
    return this.settings.qos === 1 ? this.ackCount : this.sent;
  }

  private inflight(): number {
    return this.settings.qos === 1 ? this.sent - this.ackCount - this.lost : 0;
  }

  private tick(): void {
    const now = performance.now();
    const rate = this.settings.connectRate;
    // At most one tick's worth at once: on loopback each connect() does the whole TCP handshake.
    this.connectBudget = Math.min(this.connectBudget + (rate * (now - this.lastTickAt)) / 1000, Math.max(1, (rate * TICK_MS) / 1000));
    this.lastTickAt = now;
    for (const car of this.cars) {
      if (car.state === 'online') {
        if (!car.driving) car.link.idle(now);
        else if (now >= car.tripEndsAt) this.endTrip(car, now);
        else this.sample(car, now);
      } else if (car.state === 'waiting') {
        if (car.retryAt <= now && this.connectBudget >= 1 && this.openSockets - this.onlineCount < MAX_CONNECTING) this.open(car, now);
      } else if (car.state === 'connecting' && now - car.connectStartedAt > CONNECT_TIMEOUT_MS) {
        car.link.destroy(`no CONNACK within ${CONNECT_TIMEOUT_MS / 1000} s`);
      }
    }
    const target = Math.round(this.settings.driving * this.onlineCount);
    while (this.drivingCount < target && this.parked.length > 0) this.startTrip(this.parked[Math.floor(Math.random() * this.parked.length)]!, now);
    if (now - this.last.at >= this.settings.reportEvery * 1000) this.report(now);
  }

  /** Cars connect in index order, as the connect rate and MAX_CONNECTING allow; reconnecting ones after RECONNECT_MS. */
  private open(car: FleetCar, now: number): void {
    this.connectBudget--;
    this.openSockets++;
    car.state = 'connecting';
    car.connectStartedAt = now;
    const sources = this.settings.sources;
    car.link.open(this.endpoint, sources.length ? sources[car.index % sources.length] : undefined, car.credentials.id, car.credentials.secret, KEEPALIVE_S);
  }

  private sample(car: FleetCar, now: number): void {
    if (now - car.nextSampleAt > MAX_LAG_MS) {
      const missed = Math.floor((now - car.nextSampleAt) / this.intervalMs);
      car.nextSampleAt += missed * this.intervalMs;
      this.error('samples skipped: the simulator fell behind', missed);
    }
    while (car.nextSampleAt <= now) {
      const t = car.nextSampleAt;
      car.car.step((t - car.lastSampleAt) / 1000);
      car.lastSampleAt = t;
      car.nextSampleAt += this.intervalMs;
      this.publish(car, 'telemetry', t, car.car.telemetry());
    }
  }

  private startTrip(car: FleetCar, now: number): void {
    this.unpark(car);
    car.driving = true;
    this.drivingCount++;
    this.tripsStarted++;
    // Trips last 0.5-1.5 times the mean; a car's first trip is already under way, so it ends
    // anywhere from now on, and the fleet does not stop in step.
    const share = car.trips++ === 0 ? Math.random() * 1.5 : 0.5 + Math.random();
    car.tripEndsAt = now + share * this.settings.tripMinutes * 60_000;
    car.lastSampleAt = now;
    car.nextSampleAt = now + Math.random() * this.intervalMs;
    this.publish(car, 'trip', now, car.car.startTrip(performance.timeOrigin + now));
  }

  private endTrip(car: FleetCar, now: number): void {
    car.car.step((now - car.lastSampleAt) / 1000);
    this.publish(car, 'trip', now, car.car.stopTrip(performance.timeOrigin + now));
    car.driving = false;
    this.drivingCount--;
    this.tripsEnded++;
    this.park(car);
  }

  /** In the envelope form: the message's `ts` is the sample time, not the time it reached the server. */
  private publish(car: FleetCar, type: string, at: number, body: object): void {
    if (car.link.publish(type, performance.timeOrigin + at, body, this.settings.qos)) this.sent++;
    else this.error(`${type} dropped: ${car.link.dropReason}`);
  }

  private park(car: FleetCar): void {
    car.parkedSlot = this.parked.push(car) - 1;
  }

  /** Swap-remove: picking and removing a random parked car stays O(1) with 30,000 of them. */
  private unpark(car: FleetCar): void {
    const last = this.parked.pop()!;
    if (last !== car) {
      this.parked[car.parkedSlot] = last;
      last.parkedSlot = car.parkedSlot;
    }
    car.parkedSlot = -1;
  }

  private report(now: number): void {
    this.totalLatency.add(this.intervalLatency);
    const delivered = this.delivered();
    const latency = this.intervalLatency.count > 0 ? { p50: this.intervalLatency.percentile(0.5), p99: this.intervalLatency.percentile(0.99), max: this.intervalLatency.max } : null;
    this.peakRss = Math.max(this.peakRss, process.memoryUsage.rss());
    this.settings.onReport?.({
      elapsedS: (now - this.startedAt) / 1000,
      connected: this.onlineCount,
      driving: this.drivingCount,
      ratePerS: ((delivered - this.last.delivered) * 1000) / (now - this.last.at),
      delivered,
      cpuMicros: cpuMicros(),
      latency,
      errors: this.errorCount - this.last.errors,
    });
    this.intervalLatency.reset();
    this.last = { at: now, delivered, errors: this.errorCount };
  }

  private async disconnectAll(): Promise<void> {
    for (const car of this.cars) car.link.close();
    if (!(await this.waitFor(() => this.openSockets === 0, 2_000))) for (const car of this.cars) car.link.destroy(null);
    await this.waitFor(() => this.openSockets === 0, 1_000);
  }

  private async waitFor(condition: () => boolean, ms: number): Promise<boolean> {
    const deadline = performance.now() + ms;
    while (!condition()) {
      if (performance.now() > deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return true;
  }
}
