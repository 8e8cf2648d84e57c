import { z } from 'zod';
import { duration, parseDuration } from './duration.js';
import { NitrogenError } from './errors.js';

const allowance = z.strictObject({
  /** Sustained rate. */
  perSecond: z.number().positive(),
  /** What a sender may spend at once after being idle. */
  burst: z.number().int().positive(),
});

/** The `quota` section of the configuration (docs/configuration.md): per sending principal. */
export const QuotaOptions = z.strictObject({
  messages: allowance.default({ perSecond: 200, burst: 2000 }),
  /** Counted in characters of the encoded envelope: its UTF-8 size for ASCII text. */
  bytes: allowance.default({ perSecond: 1024 * 1024, burst: 16 * 1024 * 1024 }),
  /** How long MQTT acknowledgements may be held back to keep a sender within its quota. */
  maxDelay: duration.default('5s'),
  /** Senders tracked at once; beyond it the one tracked first starts afresh. */
  maxTracked: z.number().int().min(100).max(10_000_000).default(100_000),
});
export type QuotaOptions = z.output<typeof QuotaOptions>;

interface Allowance {
  messages: number;
  bytes: number;
  at: number;
}

/**
 * Per-principal ingestion quota: two token buckets per sender (messages, bytes) in one table
 * entry, so a batch costs one map lookup. A sender within its allowance is charged and goes on.
 * One over it is refused at once (REST: 429 with Retry-After), or, where the transport can hold
 * the acknowledgement instead (MQTT), charged in advance and told how long to wait: its
 * messages are committed and acknowledged late, which slows it to the quota's rate without
 * losing anything. Only a sender that would have to wait longer than `maxDelay` is refused.
 */
export class IngestQuota {
  private readonly allowances = new Map<string, Allowance>();
  private readonly messagesPerMs: number;
  private readonly bytesPerMs: number;
  private readonly maxDelayMs: number;

  constructor(private readonly options: QuotaOptions) {
    this.messagesPerMs = options.messages.perSecond / 1000;
    this.bytesPerMs = options.bytes.perSecond / 1000;
    this.maxDelayMs = parseDuration(options.maxDelay);
  }

  /**
   * Charges `count` messages of `size` characters in all to `sender`. Returns 0 when they are
   * within its quota, else (with `hold`) the milliseconds to hold them back. Throws
   * NITROGEN_ERR_QUOTA_EXCEEDED, charging nothing, when the sender is over and may not be held,
   * or would have to be held longer than `maxDelay`.
   */
  charge(sender: string, count: number, size: number, now: number, hold: boolean): number {
    const { messages: messageLimit, bytes: byteLimit } = this.options;
    let entry = this.allowances.get(sender);
    let messages = messageLimit.burst;
    let bytes = byteLimit.burst;
    if (entry) {
      const elapsed = Math.max(0, now - entry.at);
      messages = Math.min(messageLimit.burst, entry.messages + elapsed * this.messagesPerMs);
      bytes = Math.min(byteLimit.burst, entry.bytes + elapsed * this.bytesPerMs);
    }
    const messagesWait = (count - messages) / this.messagesPerMs;
    const bytesWait = (size - bytes) / this.bytesPerMs;
    const wait = Math.max(0, messagesWait, bytesWait);
    if (wait > 0 && (!hold || wait > this.maxDelayMs)) {
      const limit = messagesWait >= bytesWait ? 'quota.messages' : 'quota.bytes';
      throw this.exceeded(sender, limit, count, size, wait, hold);
    }
    if (!entry) {
      if (this.allowances.size >= this.options.maxTracked) this.allowances.delete(this.allowances.keys().next().value!);
      this.allowances.set(sender, (entry = { messages, bytes, at: now }));
    }
    entry.messages = messages - count;
    entry.bytes = bytes - size;
    entry.at = now;
    return wait > 0 ? Math.ceil(wait) : 0;
  }

  private exceeded(sender: string, limit: 'quota.messages' | 'quota.bytes', count: number, size: number, wait: number, held: boolean): NitrogenError {
    const { perSecond, burst } = limit === 'quota.messages' ? this.options.messages : this.options.bytes;
    const amount = limit === 'quota.messages' ? `${count} messages` : `${size} bytes`;
    // More than a full burst never fits without holding: retrying the same request cannot help.
    if (!held && (limit === 'quota.messages' ? count : size) > burst) {
      return new NitrogenError('NITROGEN_ERR_QUOTA_EXCEEDED', `'${sender}' sent ${amount} at once, more than ${limit}.burst (${burst}); send smaller batches`, { details: { limit } });
    }
    const err = new NitrogenError('NITROGEN_ERR_QUOTA_EXCEEDED', `'${sender}' is over ${limit} (${perSecond}/s, burst ${burst}); retry later`, { details: { limit } });
    err.retryAfter = Math.max(1, Math.ceil(wait / 1000));
    return err;
  }
}
