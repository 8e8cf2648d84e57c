// Seeded randomness for the fuzz tests (`*.fuzz.test.ts`). In `npm test` each
// runs a fixed seed and few cases; `npm run fuzz` multiplies the cases by
// NITROGEN_FUZZ_SCALE and takes a fresh seed unless NITROGEN_FUZZ_SEED names
// one. A failure names its seed, so it can be replayed.

/** How many times more cases than in `npm test` this run makes. */
function fuzzScale(): number {
  const scale = Number(process.env.NITROGEN_FUZZ_SCALE ?? 1);
  return Number.isFinite(scale) && scale >= 1 ? scale : 1;
}

/** `base` cases, scaled for this run. */
export const fuzzCases = (base: number): number => Math.round(base * fuzzScale());

/** The seed of this run: NITROGEN_FUZZ_SEED, else `fixed` in npm test, else a random one. */
export function fuzzSeed(fixed: number): number {
  const env = process.env.NITROGEN_FUZZ_SEED;
  if (env !== undefined && env !== '') return Number(env) >>> 0;
  return fuzzScale() > 1 ? (Math.random() * 2 ** 32) >>> 0 : fixed;
}

/** xorshift32: reproducible randomness from a seed. */
export class Random {
  private x: number;
  constructor(readonly seed: number) {
    this.x = seed >>> 0 || 1;
  }

  /** A float in [0, 1). */
  next(): number {
    let x = this.x;
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    this.x = x >>> 0;
    return this.x / 4294967296;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  bytes(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }

  /** A copy of `input` with a few bytes flipped, cut, inserted or repeated. */
  mutate(input: Buffer): Buffer {
    let out = Buffer.from(input);
    for (let edits = 1 + this.int(4); edits > 0; edits--) {
      const at = out.length === 0 ? 0 : this.int(out.length);
      switch (this.int(5)) {
        case 0:
          if (out.length > 0) out[at] = this.int(256);
          break;
        case 1:
          out = out.subarray(0, at);
          break;
        case 2:
          out = Buffer.concat([out.subarray(0, at), this.bytes(1 + this.int(8)), out.subarray(at)]);
          break;
        case 3:
          out = Buffer.concat([out.subarray(0, at), out.subarray(at, at + 1 + this.int(16)), out.subarray(at)]);
          break;
        default:
          if (out.length > 0) out[at] = this.pick([0x00, 0x7f, 0x80, 0xff]);
      }
    }
    return out;
  }
}

/** Runs `fn`, naming the seed if it fails. */
export async function withSeed<T>(seed: number, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw new Error(`fuzz case failed (replay with NITROGEN_FUZZ_SEED=${seed}): ${(err as Error).message}`, { cause: err });
  }
}
