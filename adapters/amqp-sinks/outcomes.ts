// Maps what the AMQP client reports into the Sink port's two errors (core/ports/sink.ts).
import { NitrogenError } from '../../core/errors.js';
import { Condition, DeliveryError, EncodeError, LinkError } from '@nitrogen/amqp';

/** A message the sink refuses to send for good, before the peer sees it (e.g. too large). */
export class Unsendable extends Error {}

/**
 * Whether a message's failure is final for that message: the peer's `rejected` outcome
 * (AMQP 1.0 §3.4.2), a message larger than the link's max-message-size, or one the codec
 * cannot encode. Everything else (`released`, `modified`, detach, close, lost or refused
 * connection, timeout) may succeed later.
 */
function isFinal(err: unknown): boolean {
  if (err instanceof Unsendable || err instanceof EncodeError) return true;
  if (err instanceof DeliveryError) return err.outcome === 'rejected';
  // The client refuses, without sending it, a message larger than the link's max-message-size
  // (§2.7.3; sender.ts); a detach by the peer with the same condition fails every message in flight.
  return err instanceof LinkError && err.condition === Condition.MessageSizeExceeded && /^message of \d+ bytes/.test(err.description ?? '');
}

/** NITROGEN_ERR_SINK_RETRYABLE for a failure that is not about one message. */
export function retryable(sink: string, what: string, err: unknown): NitrogenError {
  if (err instanceof NitrogenError) return err;
  return new NitrogenError('NITROGEN_ERR_SINK_RETRYABLE', `${sink}: ${what}: ${(err as Error)?.message ?? String(err)}`, { cause: err });
}

/**
 * Turns per-message results into the port's answer, given in batch order: nothing when every
 * message was accepted; otherwise the error of the first message that was not. Messages are
 * sent concurrently, so later ones may have been accepted too; the runner sends them again
 * (at-least-once). A final failure becomes NITROGEN_ERR_SINK_REJECTED with `details.index`,
 * every earlier message having been accepted; any other becomes NITROGEN_ERR_SINK_RETRYABLE.
 */
export function settle(sink: string, ids: readonly string[], failures: ReadonlyArray<unknown>): void {
  const index = failures.findIndex((f) => f !== undefined);
  if (index < 0) return;
  const err = failures[index];
  const reason = (err as Error)?.message ?? String(err);
  if (isFinal(err)) {
    throw new NitrogenError('NITROGEN_ERR_SINK_REJECTED', `${sink}: message ${ids[index]} refused: ${reason}`, { cause: err, details: { index } });
  }
  throw retryable(sink, `message ${ids[index]} not accepted`, err);
}
