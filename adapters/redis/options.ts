import { z } from 'zod';

const MiB = 1024 * 1024;

/** Options of the `redis` cluster bus (docs/cluster.md). */
export const RedisBusOptions = z.strictObject({
  /** `redis://[user:password@]host:port[/db]` or `rediss://…` for TLS; the password is never logged. */
  url: z.string().regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL'),
  /** Prefix of every key and channel, so deployments can share a Redis server. */
  prefix: z
    .string()
    .regex(/^[A-Za-z0-9._:-]{1,64}$/)
    .default('nitrogen:'),
  /** A batch of committed messages is published once it holds this many bytes, else at the end of the event-loop turn. */
  maxBatchBytes: z
    .number()
    .int()
    .min(1024)
    .max(64 * MiB)
    .default(256 * 1024),
  /** Bytes published and not yet answered by Redis; beyond it batches are dropped (counted), never buffered. */
  maxInFlightBytes: z
    .number()
    .int()
    .min(MiB)
    .default(64 * MiB),
  /** How long the start waits for Redis, and each reconnection attempt. */
  connectTimeoutMs: z.number().int().positive().default(10_000),
  /** Longest wait between reconnection attempts while Redis is down. */
  maxRetryDelayMs: z.number().int().positive().default(2000),
});
export type RedisBusOptions = z.output<typeof RedisBusOptions>;
