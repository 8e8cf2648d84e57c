/** Charts drawn as SVG by hand: a few hundred points each, no library, nothing fetched from elsewhere. */

export interface Point {
  t: number;
  v: number;
}

const W = 320;
const H = 120;
const PAD = { left: 44, right: 8, top: 10, bottom: 18 };

function fmt(v: number): string {
  const a = Math.abs(v);
  if (Number.isInteger(v)) return String(v);
  return a >= 1000 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : v.toFixed(2);
}

/** A line over time. `data-points` and `data-last` let tests see it move without reading pixels. */
export function LineChart({ title, unit, points }: { title: string; unit?: string; points: Point[] }) {
  const last = points.at(-1);
  let min = Infinity;
  let max = -Infinity;
  for (const p of points) {
    if (p.v < min) min = p.v;
    if (p.v > max) max = p.v;
  }
  if (min === max) {
    min -= 1;
    max += 1;
  }
  const t0 = points[0]?.t ?? 0;
  const t1 = Math.max(last?.t ?? 1, t0 + 1);
  const x = (t: number) => PAD.left + ((t - t0) / (t1 - t0)) * (W - PAD.left - PAD.right);
  const y = (v: number) => PAD.top + (1 - (v - min) / (max - min)) * (H - PAD.top - PAD.bottom);
  const line = points.map((p) => `${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(' ');
  const summary = last ? `${title}: now ${fmt(last.v)}${unit ? ` ${unit}` : ''}, range ${fmt(min)} to ${fmt(max)} over ${points.length} samples` : `${title}: no data yet`;
  return (
    <figure class="chart" data-chart={title} data-points={points.length} data-last={last?.v ?? ''}>
      <figcaption>
        <span>{title}</span> <strong>{last ? `${fmt(last.v)}${unit ? ` ${unit}` : ''}` : '–'}</strong>
      </figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={summary}>
        <line class="axis" x1={PAD.left} y1={H - PAD.bottom} x2={W - PAD.right} y2={H - PAD.bottom} />
        <text class="tick" x={PAD.left - 4} y={PAD.top + 4} text-anchor="end">
          {points.length ? fmt(max) : ''}
        </text>
        <text class="tick" x={PAD.left - 4} y={H - PAD.bottom} text-anchor="end">
          {points.length ? fmt(min) : ''}
        </text>
        {points.length > 1 && <polyline class="series" points={line} />}
        {last && <circle class="dot" cx={x(last.t)} cy={y(last.v)} r="2.5" />}
        <text class="tick" x={W - PAD.right} y={H - 4} text-anchor="end">
          {points.length ? `${Math.round((t1 - t0) / 1000)} s` : ''}
        </text>
      </svg>
    </figure>
  );
}

export interface Position {
  lat: number;
  lon: number;
}

/**
 * A track of positions on a plain SVG: an equirectangular projection around the track's middle
 * latitude, scaled to fit. No tiles, so no request leaves the server.
 */
export function Track({ positions }: { positions: Position[] }) {
  const size = 300;
  if (positions.length === 0) return <p class="muted">No positions yet: messages with lat and lon draw a track here.</p>;
  const midLat = (Math.min(...positions.map((p) => p.lat)) + Math.max(...positions.map((p) => p.lat))) / 2;
  const k = Math.cos((midLat * Math.PI) / 180);
  const xs = positions.map((p) => p.lon * k);
  const ys = positions.map((p) => -p.lat);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const span = Math.max(x1 - x0, y1 - y0, 1e-6);
  const px = (x: number) => 10 + ((x - x0) / span) * (size - 20);
  const py = (y: number) => 10 + ((y - y0) / span) * (size - 20);
  const line = positions.map((_, i) => `${px(xs[i]!).toFixed(1)},${py(ys[i]!).toFixed(1)}`).join(' ');
  const last = positions.at(-1)!;
  return (
    <svg class="track" viewBox={`0 0 ${size} ${size}`} role="img" aria-label={`Track of ${positions.length} positions, last at ${last.lat.toFixed(5)}, ${last.lon.toFixed(5)}`} data-positions={positions.length}>
      <rect x="0" y="0" width={size} height={size} class="ground" />
      <polyline class="series" points={line} />
      <circle class="start" cx={px(xs[0]!)} cy={py(ys[0]!)} r="4" />
      <circle class="dot" cx={px(xs.at(-1)!)} cy={py(ys.at(-1)!)} r="5" />
    </svg>
  );
}
