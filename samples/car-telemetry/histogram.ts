const LINEAR = 32; // 2^5: values below are their own bucket
const SUB_BITS = 4; // 16 buckets per power of two
const TOP = 2 ** 30;
const BUCKETS = LINEAR + (30 - 5 + 1) * 2 ** SUB_BITS;

function bucketOf(us: number): number {
  if (us < LINEAR) return us;
  const exponent = 31 - Math.clz32(us); // floor(log2(us)), at least 5
  return LINEAR + (exponent - 5) * 2 ** SUB_BITS + ((us >>> (exponent - SUB_BITS)) & (2 ** SUB_BITS - 1));
}

/** The largest value, in µs, that falls into `bucket`. */
function highestIn(bucket: number): number {
  if (bucket < LINEAR) return bucket;
  const exponent = 5 + Math.floor((bucket - LINEAR) / 2 ** SUB_BITS);
  const sub = (bucket - LINEAR) % 2 ** SUB_BITS;
  const width = 2 ** (exponent - SUB_BITS);
  return (2 ** SUB_BITS + sub) * width + width - 1;
}

export interface Percentiles {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

/**
 * Latencies in a fixed array of log-linear buckets (the HdrHistogram idea, kept small): values
 * are counted in microseconds, exactly below 32 µs and in 16 buckets per power of two above,
 * so a percentile is off by at most 1/16 (6%) and recording is a few integer operations,
 * whether it holds ten values or a billion. Values above 2^30 µs (18 minutes) share the top bucket.
 */
export class LatencyHistogram {
  private readonly counts = new Float64Array(BUCKETS);
  count = 0;
  /** Exact, in ms. */
  max = 0;

  record(ms: number): void {
    const us = Math.min(TOP, Math.max(0, Math.round(ms * 1000)));
    this.counts[bucketOf(us)]!++;
    this.count++;
    if (ms > this.max) this.max = ms;
  }

  add(other: LatencyHistogram): void {
    for (let i = 0; i < BUCKETS; i++) this.counts[i]! += other.counts[i]!;
    this.count += other.count;
    this.max = Math.max(this.max, other.max);
  }

  reset(): void {
    this.counts.fill(0);
    this.count = 0;
    this.max = 0;
  }

  /** The value (ms) below or at which a share `q` of the recorded values lie; NaN when empty. */
  percentile(q: number): number {
    if (this.count === 0) return NaN;
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.min(highestIn(i) / 1000, this.max);
    }
    return this.max;
  }

  summary(): Percentiles {
    return { count: this.count, p50: this.percentile(0.5), p90: this.percentile(0.9), p99: this.percentile(0.99), p999: this.percentile(0.999), max: this.max };
  }
}
