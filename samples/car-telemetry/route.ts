/** A point of a route, with the speed limit of the stretch that starts there. */
export interface Waypoint {
  lat: number;
  lon: number;
  limitKmh: number;
}

export interface RoutePosition {
  lat: number;
  lon: number;
  /** Compass heading in degrees, 0 = north, 90 = east. */
  heading: number;
  limitKmh: number;
}

/**
 * A loop through Seattle: downtown, the waterfront, Ballard, north on 8th Ave NW, east on
 * N 85th St and back south on I-5, about 26 km. City streets, arterials and a motorway give
 * the cars stop-and-go, steady and fast stretches.
 */
export const SEATTLE_LOOP: readonly Waypoint[] = [
  { lat: 47.6021, lon: -122.3343, limitKmh: 40 }, // Pioneer Square
  { lat: 47.608, lon: -122.3424, limitKmh: 40 }, // Alaskan Way
  { lat: 47.6152, lon: -122.354, limitKmh: 50 }, // Broad St
  { lat: 47.6275, lon: -122.3713, limitKmh: 65 }, // Elliott Ave W
  { lat: 47.6468, lon: -122.3763, limitKmh: 65 }, // 15th Ave W
  { lat: 47.6587, lon: -122.3767, limitKmh: 65 }, // Ballard Bridge
  { lat: 47.6686, lon: -122.3764, limitKmh: 50 }, // 15th Ave NW & NW Market St
  { lat: 47.6686, lon: -122.3643, limitKmh: 50 }, // 8th Ave NW
  { lat: 47.69, lon: -122.3644, limitKmh: 50 }, // NW 85th St
  { lat: 47.6904, lon: -122.3447, limitKmh: 50 }, // Aurora Ave N
  { lat: 47.6904, lon: -122.3235, limitKmh: 100 }, // I-5 south
  { lat: 47.675, lon: -122.3225, limitKmh: 100 },
  { lat: 47.653, lon: -122.3215, limitKmh: 100 }, // Ship Canal Bridge
  { lat: 47.632, lon: -122.3245, limitKmh: 100 },
  { lat: 47.624, lon: -122.3275, limitKmh: 80 }, // Mercer St exit
  { lat: 47.607, lon: -122.334, limitKmh: 40 }, // 4th Ave & Seneca St
];

const EARTH_RADIUS_M = 6_371_000;
const rad = (deg: number) => (deg * Math.PI) / 180;

function haversineM(a: Waypoint, b: Waypoint): number {
  const dLat = rad(b.lat - a.lat);
  const dLon = rad(b.lon - a.lon);
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(rad(a.lat)) * Math.cos(rad(b.lat)) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_RADIUS_M * Math.asin(Math.sqrt(h));
}

function bearing(a: Waypoint, b: Waypoint): number {
  const y = Math.sin(rad(b.lon - a.lon)) * Math.cos(rad(b.lat));
  const x = Math.cos(rad(a.lat)) * Math.sin(rad(b.lat)) - Math.sin(rad(a.lat)) * Math.cos(rad(b.lat)) * Math.cos(rad(b.lon - a.lon));
  return ((Math.atan2(y, x) * 180) / Math.PI + 360) % 360;
}

/**
 * A closed polyline that cars drive around, addressed by the distance travelled along it.
 * Positions between waypoints are interpolated linearly: over a few hundred metres the
 * error against a great circle is far below a GPS fix's.
 */
export class Route {
  /** Distance from the start to each waypoint, in metres; the last entry is the loop length. */
  private readonly starts: number[] = [0];
  private readonly headings: number[] = [];
  readonly lengthM: number;
  readonly maxLimitKmh: number;

  constructor(readonly waypoints: readonly Waypoint[] = SEATTLE_LOOP) {
    if (waypoints.length < 2) throw new Error('a route needs at least two waypoints');
    for (let i = 0; i < waypoints.length; i++) {
      const a = waypoints[i]!;
      const b = waypoints[(i + 1) % waypoints.length]!;
      this.starts.push(this.starts[i]! + haversineM(a, b));
      this.headings.push(bearing(a, b));
    }
    this.lengthM = this.starts[waypoints.length]!;
    this.maxLimitKmh = Math.max(...waypoints.map((w) => w.limitKmh));
  }

  /** Where a car is after driving `distanceM` from the first waypoint (any distance: it loops). */
  at(distanceM: number): RoutePosition {
    const d = ((distanceM % this.lengthM) + this.lengthM) % this.lengthM;
    // Few waypoints: a linear scan is as fast as a binary search here.
    let i = 0;
    while (this.starts[i + 1]! <= d) i++;
    const a = this.waypoints[i]!;
    const b = this.waypoints[(i + 1) % this.waypoints.length]!;
    const f = (d - this.starts[i]!) / (this.starts[i + 1]! - this.starts[i]!);
    return { lat: a.lat + (b.lat - a.lat) * f, lon: a.lon + (b.lon - a.lon) * f, heading: this.headings[i]!, limitKmh: a.limitKmh };
  }
}
