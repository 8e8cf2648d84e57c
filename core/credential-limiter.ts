import { z } from 'zod';
import { duration, durationAtLeast, parseDuration } from './duration.js';
import { NitrogenError } from './errors.js';
import type { Logger } from './logger.js';
import { TokenBuckets } from './token-buckets.js';

const failureLimit = z.strictObject({
  /** Failed checks allowed in a burst; the allowance refills evenly over `per`. */
  failures: z.number().int().min(1).max(1_000_000),
  per: duration.refine((value) => durationAtLeast(value, 1000), 'must be at least 1s'),
});
type FailureLimit = z.output<typeof failureLimit>;

export const FailureLimits = z.strictObject({
  /** Per principal id, known or not: what one account can be guessed at. */
  perPrincipal: failureLimit.default({ failures: 10, per: '1m' }),
  /**
   * Per client address (IPv6: per /64): what one client can try across accounts. Only failures
   * count, so a fleet behind one NAT address that logs in correctly is never slowed.
   */
  perAddress: failureLimit.default({ failures: 1200, per: '1m' }),
  /** Principals, and addresses, tracked at once; beyond it the oldest is forgotten. */
  maxTracked: z.number().int().min(100).max(10_000_000).default(100_000),
});
export type FailureLimits = z.output<typeof FailureLimits>;

/** An attempt admitted by the limiter: settle it once the check answered. */
export interface Attempt {
  /** The credentials were good: the attempt is given back, successes cost nothing. */
  succeeded(): void;
}

function buckets(limit: FailureLimit, maxTracked: number): TokenBuckets {
  return new TokenBuckets(limit.failures, limit.failures / parseDuration(limit.per), maxTracked);
}

/**
 * Counts failed credential checks per principal and per address, each in a token bucket. An
 * attempt takes one token from both before the check runs (so a burst of concurrent guesses
 * is limited before any of them costs a hash) and gives both back when it succeeds. With either
 * bucket empty the check is refused at once with NITROGEN_ERR_RATE_LIMITED and the seconds until
 * a token is back. Memory: two tables of at most `maxTracked` small entries.
 */
export class CredentialLimiter {
  private readonly principals: TokenBuckets;
  private readonly addresses: TokenBuckets;
  /** Keys refused since their last admitted attempt: the first refusal is logged, not every one. */
  private readonly limited = new Set<string>();

  constructor(
    private readonly options: FailureLimits,
    private readonly logger: Logger,
  ) {
    this.principals = buckets(options.perPrincipal, options.maxTracked);
    this.addresses = buckets(options.perAddress, options.maxTracked);
  }

  get tracked(): { principals: number; addresses: number } {
    return { principals: this.principals.size, addresses: this.addresses.size };
  }

  /**
   * Admits a secret check for `principal` from `address` (undefined: not limited by address,
   * as behind a proxy that does not say for whom), or throws NITROGEN_ERR_RATE_LIMITED.
   */
  begin(principal: string, address: string | undefined, now = Date.now()): Attempt {
    const principalWait = this.principals.waitFor(principal, 1, now);
    const addressWait = address === undefined ? 0 : this.addresses.waitFor(address, 1, now);
    if (principalWait > 0 || addressWait > 0) {
      const wait = Math.max(principalWait, addressWait);
      throw addressWait >= principalWait ? this.refusal('credentials.perAddress', address!, wait) : this.refusal('credentials.perPrincipal', principal, wait);
    }
    this.principals.take(principal, 1, now);
    if (address !== undefined) this.addresses.take(address, 1, now);
    if (this.limited.size > 0) {
      this.limited.delete(`credentials.perPrincipal ${principal}`);
      if (address !== undefined) this.limited.delete(`credentials.perAddress ${address}`);
    }
    let settled = false;
    return {
      succeeded: () => {
        if (settled) return;
        settled = true;
        this.principals.take(principal, -1, Date.now());
        if (address !== undefined) this.addresses.take(address, -1, Date.now());
      },
    };
  }

  /**
   * Counts a failed check that was cheap to make (an access token): the check itself already
   * ran, so only the answer changes. Throws NITROGEN_ERR_RATE_LIMITED once the address is over.
   */
  failed(address: string | undefined, now = Date.now()): void {
    if (address === undefined) return;
    const level = this.addresses.take(address, 1, now);
    if (level < 0) {
      this.addresses.take(address, -1, now); // refused: it does not deepen the debt
      throw this.refusal('credentials.perAddress', address, this.addresses.waitFor(address, 1, now));
    }
  }

  private refusal(limit: 'credentials.perPrincipal' | 'credentials.perAddress', key: string, waitMs: number): NitrogenError {
    const who = limit === 'credentials.perAddress' ? `address ${key}` : `principal '${key}'`;
    const episode = `${limit} ${key}`;
    if (!this.limited.has(episode)) {
      if (this.limited.size >= this.options.maxTracked) this.limited.clear();
      this.limited.add(episode);
      // Once per episode: an attack shows in the log without flooding it.
      this.logger.warn({ limit, who }, 'credential checks refused: too many failures');
    }
    const err = new NitrogenError('NITROGEN_ERR_RATE_LIMITED', `too many failed credential checks for ${who} (${limit}); retry later`, { details: { limit } });
    err.retryAfter = Math.max(1, Math.ceil(waitMs / 1000));
    return err;
  }
}
