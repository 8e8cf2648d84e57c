import { isNitrogenError, type NitrogenError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { RequestAborted } from './body.js';

/**
 * A warning for an event that comes in floods (backpressure 503s, refused connections): at most
 * one line per interval, carrying how many happened since the last line. An operator learns the
 * server is saturated without the log becoming the next bottleneck.
 */
export class ThrottledWarning {
  private count = 0;
  private lastAt = -Infinity;

  constructor(
    private readonly logger: Logger,
    private readonly message: string,
    private readonly intervalMs = 10_000,
  ) {}

  note(): void {
    this.count++;
    const now = Date.now();
    if (now - this.lastAt < this.intervalMs) return;
    this.logger.warn({ count: this.count, sinceMs: Number.isFinite(this.lastAt) ? now - this.lastAt : undefined }, this.message);
    this.count = 0;
    this.lastAt = now;
  }
}

/** Codes of a connection that ended under a request: the client left, nothing failed here. */
const GONE = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'ERR_STREAM_PREMATURE_CLOSE', 'ERR_STREAM_DESTROYED']);

export function isClientGone(err: unknown): boolean {
  return err instanceof RequestAborted || GONE.has((err as NodeJS.ErrnoException | undefined)?.code ?? '');
}

/**
 * How a failed request is logged (docs/security.md, REST): a client's mistake (4xx) and a client
 * that went away at debug, without a stack; backpressure (503 OVERLOADED) at debug plus a
 * throttled warning; only the server's own failures at error, with the error. Never the body.
 */
export function logRequestError(logger: Logger, request: { method: string; path: string }, err: unknown, saturated: ThrottledWarning): void {
  if (isClientGone(err)) {
    logger.debug({ ...request }, 'client closed the connection during the request');
    return;
  }
  const known: NitrogenError | undefined = isNitrogenError(err) ? err : undefined;
  if (known?.code === 'NITROGEN_ERR_OVERLOADED') saturated.note();
  if (known && (known.status < 500 || known.code === 'NITROGEN_ERR_OVERLOADED' || known.code === 'NITROGEN_ERR_UNAVAILABLE')) {
    logger.debug({ ...request, status: known.status, code: known.code }, 'request refused');
    return;
  }
  logger.error({ err, ...request }, 'request failed');
}
