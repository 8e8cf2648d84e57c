import { Backoff, sleep, type BackoffOptions } from './backoff.js';
import { ClientError } from './errors.js';
import type { Carrier, Outbox, Sending } from './outbox.js';
import type { Rest } from './rest.js';

export interface RestCarrierEvents {
  online(): void;
  offline(error: Error): void;
}

/**
 * Whether the server refused these messages for what they are (an invalid envelope, no right to
 * send to the recipient, too large, more bytes than a whole quota burst), so that sending them
 * again cannot help. Authentication, quotas with a `Retry-After`, overload and server faults are
 * about the moment, not the message.
 */
export function refusesMessage(error: unknown): error is ClientError {
  if (!(error instanceof ClientError) || error.status === undefined) return false;
  if (error.code === 'NITROGEN_ERR_QUOTA_EXCEEDED') return error.retryAfterMs === undefined;
  return [400, 403, 404, 413, 415].includes(error.status) && error.code !== 'NITROGEN_ERR_PRINCIPAL_DISABLED';
}

/**
 * Whether the server refused a request for holding too much at once, whatever the messages:
 * more than its `limits.maxBatch`, a body over its `maxBodyBytes`, or more than a quota burst
 * (429 without `Retry-After`: docs/api.md, POST /messages). Smaller batches pass.
 */
function refusesBatchSize(error: unknown): boolean {
  if (!(error instanceof ClientError)) return false;
  if (error.code === 'NITROGEN_ERR_BATCH_TOO_LARGE') return true;
  if (error.code === 'NITROGEN_ERR_PAYLOAD_TOO_LARGE') return error.details?.limit === 'maxBodyBytes';
  return error.code === 'NITROGEN_ERR_QUOTA_EXCEEDED' && error.retryAfterMs === undefined;
}

/** The index `i` of a batch's `[i].field`, as the server names a field in a batch (docs/api.md). */
function batchIndex(error: ClientError): number | null {
  const field = error.details?.field;
  const match = typeof field === 'string' ? /^\[(\d+)\]/.exec(field) : null;
  return match ? Number(match[1]) : null;
}

/**
 * Carries queued messages over REST: `POST /messages` with a batch of up to `maxBatch`, one
 * request at a time, so order is kept. A batch is all or nothing on the server: when it is
 * refused for one message, that message (named by the error's `[i]` field) is refused and the
 * others go again; when the error names none, they go one by one until the culprit is found.
 * A batch refused for its size is halved, and later batches stay that small. Network failures,
 * quotas and overload are waited out with backoff (and `Retry-After`).
 */
export class RestCarrier implements Carrier {
  private batch: Sending[] = [];
  private busy = false;
  private failing = false;
  /** The most messages per request: `maxBatch`, or less once the server refused a batch for its size. */
  private ceiling: number;
  /** The next batch's size: the ceiling, or 1 while looking for the message a batch was refused for. */
  private limit: number;
  private readonly backoff: Backoff;
  private readonly stop = new AbortController();

  constructor(
    private readonly rest: Rest,
    private readonly outbox: Outbox,
    maxBatch: number,
    backoff: BackoffOptions,
    private readonly events: RestCarrierEvents,
  ) {
    this.ceiling = this.limit = maxBatch;
    this.backoff = new Backoff(backoff);
  }

  room(): number {
    return this.busy ? 0 : this.limit - this.batch.length;
  }

  send(message: Sending): void {
    this.batch.push(message);
  }

  flush(): void {
    if (this.busy || this.batch.length === 0) return;
    const batch = this.batch;
    this.batch = [];
    this.busy = true;
    void this.post(batch);
  }

  close(): void {
    this.stop.abort();
  }

  private async post(batch: Sending[]): Promise<void> {
    let json = '[';
    for (let i = 0; i < batch.length; i++) json += (i > 0 ? ',' : '') + batch[i]!.json;
    try {
      await this.rest.post('/messages', json + ']', { signal: this.stop.signal });
      this.recovered();
      for (const m of batch) this.outbox.delivered(m);
      this.limit = this.ceiling;
    } catch (err) {
      if (this.stop.signal.aborted) return;
      if (batch.length > 1 && refusesBatchSize(err)) {
        this.recovered();
        this.ceiling = Math.floor(batch.length / 2);
        this.limit = Math.min(this.limit, this.ceiling);
      } else if (refusesMessage(err)) {
        this.recovered();
        const index = batchIndex(err) ?? (batch.length === 1 ? 0 : null);
        if (index === null || index >= batch.length)
          this.limit = 1; // find it one by one
        else this.outbox.refused(batch[index]!, err);
      } else {
        if (!this.failing) {
          this.failing = true;
          this.events.offline(err as Error);
        }
        this.outbox.rewind();
        await sleep(this.backoff.after(err), this.stop.signal);
      }
      this.outbox.rewind();
    } finally {
      this.busy = false;
    }
    if (!this.stop.signal.aborted) this.outbox.pump();
  }

  private recovered(): void {
    this.backoff.reset();
    if (this.failing) {
      this.failing = false;
      this.events.online();
    }
  }
}
