interface Bucket {
  level: number;
  at: number;
}

/**
 * Token buckets by key, in a table of bounded size: what the credential limiter and the
 * ingestion quota keep per principal and per address. A bucket holds up to `capacity` tokens and
 * refills at `perMs` tokens per millisecond; a full bucket is not stored at all, so the table
 * holds only keys that spent something recently. Keys may come from unauthenticated clients,
 * so beyond `maxTracked` keys the one stored first is forgotten (its bucket starts full again):
 * memory stays bounded whatever the key space, at the price of forgiving the oldest debtor.
 * Every operation is O(1).
 */
export class TokenBuckets {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    readonly capacity: number,
    readonly perMs: number,
    private readonly maxTracked: number,
  ) {}

  get size(): number {
    return this.buckets.size;
  }

  /** Tokens in `key`'s bucket at `now`; negative while in debt. */
  level(key: string, now: number): number {
    const bucket = this.buckets.get(key);
    if (!bucket) return this.capacity;
    return Math.min(this.capacity, bucket.level + Math.max(0, now - bucket.at) * this.perMs);
  }

  /** Milliseconds until `key`'s bucket holds `tokens` again (0 when it does now). */
  waitFor(key: string, tokens: number, now: number): number {
    const missing = tokens - this.level(key, now);
    return missing <= 0 ? 0 : Math.ceil(missing / this.perMs);
  }

  /** Removes `tokens` (a negative number gives them back); the level may go below zero. */
  take(key: string, tokens: number, now: number): number {
    const level = Math.min(this.capacity, this.level(key, now) - tokens);
    const bucket = this.buckets.get(key);
    if (level >= this.capacity) {
      if (bucket) this.buckets.delete(key);
    } else if (bucket) {
      bucket.level = level;
      bucket.at = now;
    } else {
      if (this.buckets.size >= this.maxTracked) this.buckets.delete(this.buckets.keys().next().value!);
      this.buckets.set(key, { level, at: now });
    }
    return level;
  }
}
