import type { Route } from './route.js';

/**
 * Drivers keep within 10% of the limit, and brake for a lower one as cars do (not at once):
 * no car is ever faster than this times the route's highest limit.
 */
export const TOP_SPEED_FACTOR = 1.1;
export const IDLE_RPM = 800;
export const TANK_L = 50;
const AMBIENT_C = 15;
const OPERATING_C = 90;
/** Time constants of the coolant: it warms in minutes while the engine runs, cools in half an hour. */
const WARM_UP_S = 150;
const COOL_DOWN_S = 1800;
const MAX_ACCEL = 2.5; // m/s², a brisk but ordinary start
const MAX_BRAKE = 3.5; // m/s², firm braking, well short of an emergency stop
const STOP_BRAKE = 2; // m/s², coming to a halt at a light
/** Upshift speeds of a six-speed automatic (km/h) and rpm per km/h in each gear. */
const SHIFT_KMH = [15, 30, 50, 70, 95];
const RPM_PER_KMH = [120, 75, 50, 38, 31, 25];

const round = (x: number, digits: number) => Math.round(x * 10 ** digits) / 10 ** digits;
const between = (lo: number, hi: number) => lo + Math.random() * (hi - lo);

/** One telemetry sample, as the body of a `telemetry` message. */
export interface Telemetry {
  tripId: string;
  speedKmh: number;
  rpm: number;
  gear: number;
  lat: number;
  lon: number;
  heading: number;
  fuelL: number;
  engineTempC: number;
  odometerKm: number;
}

/**
 * A car driving around a route, in simulated time: `step(dt)` advances it, `telemetry()` reads
 * its instruments. A driver aims for the limit times a personal factor that drifts slowly,
 * stops now and then at lights in town, and speed changes only as fast as a car accelerates
 * or brakes; everything else (gear, rpm, fuel, coolant, odometer) follows from speed and time.
 * No I/O here, so the model is cheap and easy to test.
 */
export class Car {
  private distanceM: number;
  private speedMs = 0;
  private odometerKm: number;
  private fuelL: number;
  private engineC = AMBIENT_C;
  private driverFactor = 1;
  private wobble = Math.random() * 2 * Math.PI;
  /** Metres to the next stop at a light; while stopped, the seconds left to wait. */
  private nextStopInM = between(200, 1200);
  private stopping = false;
  private waitS = 0;
  private tripId = '';
  private tripStartKm = 0;
  private tripStartMs = 0;
  private parkedAtMs = 0;

  constructor(private readonly route: Route) {
    // A fleet of used cars parked all around the loop, tanks anywhere between a quarter and full.
    this.distanceM = Math.random() * route.lengthM;
    this.odometerKm = round(between(5_000, 150_000), 3);
    this.fuelL = between(TANK_L / 4, TANK_L);
  }

  /** Starts a trip at wall time `nowMs`; returns the body of the `trip` start event. */
  startTrip(nowMs: number) {
    if (this.parkedAtMs > 0) this.engineC = AMBIENT_C + (this.engineC - AMBIENT_C) * Math.exp(-(nowMs - this.parkedAtMs) / 1000 / COOL_DOWN_S);
    // Drivers fill up before a trip once the tank is down to a fifth.
    const refueledL = this.fuelL < TANK_L / 5 ? round(TANK_L - this.fuelL, 2) : 0;
    if (refueledL > 0) this.fuelL = TANK_L;
    this.tripId = Math.random().toString(36).slice(2, 10);
    this.tripStartKm = this.odometerKm;
    this.tripStartMs = nowMs;
    this.driverFactor = between(0.85, 1.05);
    return { event: 'start', tripId: this.tripId, ...this.place(), ...(refueledL > 0 ? { refueledL } : {}) };
  }

  /** Parks at wall time `nowMs`; returns the body of the `trip` stop event. */
  stopTrip(nowMs: number) {
    this.speedMs = 0;
    this.stopping = false;
    this.parkedAtMs = nowMs;
    return { event: 'stop', tripId: this.tripId, ...this.place(), distanceKm: round(this.odometerKm - this.tripStartKm, 3), durationS: Math.round((nowMs - this.tripStartMs) / 1000) };
  }

  /** Advances the car by `dtS` seconds of driving. */
  step(dtS: number): void {
    const dt = Math.min(dtS, 5); // a long stall of the simulator must not fling cars off the road
    const limitMs = this.route.at(this.distanceM).limitKmh / 3.6;
    // Target at most 1.05 × 1.04 of the limit, and speed approaches it from below: within TOP_SPEED_FACTOR.
    this.driverFactor = Math.min(1.05, Math.max(0.8, this.driverFactor + (Math.random() - 0.5) * 0.01 * dt));
    this.wobble += dt / 20;
    const targetMs = limitMs * this.driverFactor * (1 + 0.04 * Math.sin(this.wobble));
    if (!this.stopping && this.nextStopInM <= 0 && limitMs < 80 / 3.6) {
      // Lights and junctions in town; on the motorway the countdown waits for the exit.
      this.stopping = true;
      this.waitS = between(5, 40);
    }
    let accel: number;
    if (this.stopping) {
      accel = -STOP_BRAKE;
      if (this.speedMs === 0 && (this.waitS -= dt) <= 0) {
        this.stopping = false;
        this.nextStopInM = between(300, 1500);
      }
    } else {
      // Approach the target smoothly (0.5/s), within what the car can do.
      accel = Math.min(MAX_ACCEL, Math.max(-MAX_BRAKE, (targetMs - this.speedMs) * 0.5));
    }
    const v0 = this.speedMs;
    this.speedMs = Math.max(0, v0 + accel * dt);
    const metres = ((v0 + this.speedMs) / 2) * dt;
    this.distanceM = (this.distanceM + metres) % this.route.lengthM;
    this.nextStopInM -= metres;
    this.odometerKm += metres / 1000;
    // Fuel: about 0.8 l/h idling plus 4-9 l/100 km rising with speed and with acceleration.
    const kmh = this.speedMs * 3.6;
    const per100km = 4 + 3 * (kmh / 100) ** 2 + 2 * Math.max(0, accel);
    this.fuelL = Math.max(0, this.fuelL - (0.8 / 3600) * dt - (metres / 100_000) * per100km);
    // Coolant heads for the thermostat's range, a little hotter under load.
    const targetC = OPERATING_C + 4 * (kmh / 130) + Math.max(0, accel);
    this.engineC += (targetC - this.engineC) * (1 - Math.exp(-dt / WARM_UP_S));
  }

  telemetry(): Telemetry {
    const kmh = this.speedMs * 3.6;
    let gear = 1;
    while (gear <= SHIFT_KMH.length && kmh >= SHIFT_KMH[gear - 1]!) gear++;
    return {
      tripId: this.tripId,
      speedKmh: round(kmh, 1),
      rpm: Math.round(Math.max(IDLE_RPM, kmh * RPM_PER_KMH[gear - 1]!) / 10) * 10,
      gear,
      ...this.position(),
      fuelL: round(this.fuelL, 2),
      engineTempC: round(this.engineC, 1),
      odometerKm: round(this.odometerKm, 3),
    };
  }

  private position() {
    const p = this.route.at(this.distanceM);
    return { lat: round(p.lat, 6), lon: round(p.lon, 6), heading: Math.round(p.heading) };
  }

  /** Where the car is and what its gauges say, for trip events. */
  private place() {
    return { ...this.position(), odometerKm: round(this.odometerKm, 3), fuelL: round(this.fuelL, 2) };
  }
}
