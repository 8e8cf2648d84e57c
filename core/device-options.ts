import { z } from 'zod';
import { FailureLimits } from './credential-limiter.js';
import { duration, durationAtLeast } from './duration.js';

const rate = z.strictObject({
  /** Events allowed in a burst; the allowance refills evenly over `per`. */
  count: z.number().int().min(1).max(1_000_000),
  per: duration.refine((value) => durationAtLeast(value, 1000), 'must be at least 1s'),
});
export type Rate = z.output<typeof rate>;

/**
 * The `devices` section of the configuration (docs/configuration.md): onboarding with API keys
 * and claim codes, presence, last-known state and twins. Each limit says what it bounds in
 * docs/security.md ("Onboarding").
 */
export const DeviceOptions = z.strictObject({
  /** How long a claim code may be used after it was issued. */
  claimCodeTtl: duration.refine((value) => durationAtLeast(value, 1000), 'must be at least 1s').default('24h'),
  /**
   * Failed claims allowed per claiming principal and per address: claim codes are short, so
   * guessing them is what this bounds (docs/security.md gives the odds).
   */
  claimAttempts: FailureLimits.default({ perPrincipal: { failures: 10, per: '1h' }, perAddress: { failures: 100, per: '1h' }, maxTracked: 100_000 }),
  /** Devices registered with API keys, per key and per address (failed keys count as failed credentials). */
  registrations: z
    .strictObject({ perKey: rate.default({ count: 60, per: '1m' }), perAddress: rate.default({ count: 60, per: '1m' }), maxTracked: z.number().int().min(100).max(10_000_000).default(100_000) })
    .default({ perKey: { count: 60, per: '1m' }, perAddress: { count: 60, per: '1m' }, maxTracked: 100_000 }),
  /** API keys one principal may own. */
  maxApiKeysPerOwner: z.number().int().positive().default(100),
  /** Longest overlap a secret rotation may ask for (old and new secret both valid). */
  maxRotationOverlap: duration.default('30d'),
  /**
   * Commit `nitrogen.connected` / `nitrogen.disconnected` messages when a device's connection
   * state changes. Off by default: they are messages from the device, which its queries and
   * sinks would then see beside what it sent.
   */
  presenceEvents: z.boolean().default(false),
  /** How often presence changes are written to the registry (they are batched). */
  presenceFlush: duration.refine((value) => durationAtLeast(value, 10), 'must be at least 10ms').default('1s'),
  /** Message types per device kept in its last-known state; further types are not tracked. */
  maxStateTypes: z.number().int().positive().max(10_000).default(100),
  /** Bytes of a device's twin document (desired and reported, as JSON). */
  maxTwinBytes: z
    .number()
    .int()
    .min(1024)
    .max(1024 * 1024)
    .default(32 * 1024),
});
export type DeviceOptions = z.output<typeof DeviceOptions>;
