import { Backoff, sleep, type BackoffOptions } from './backoff.js';
import type { Message } from './envelope.js';
import { ClientError } from './errors.js';
import type { CompiledFilter } from './filter.js';
import type { Rest } from './rest.js';
import { SseParser, readEvents } from './sse.js';
import { callHandler, deferred, type MessageHandler, type Subscription } from './subscription.js';

export interface SseOptions {
  backoff: BackoffOptions;
  resetAfterMs: number;
  maxEventBytes: number;
  /** A stream ended by the server or the network, or refused for a reason that may pass. */
  onInterrupted(error: Error | null): void;
  /** Refused for good (a bad filter, a permission): the subscription ends. */
  onRefused(error: ClientError): void;
}

/**
 * A subscription over `GET /messages/stream` (docs/api.md), where the server applies the whole
 * filter. The token goes in the Authorization header (fetch streaming, not EventSource, which
 * cannot send one). When the stream ends — the token expired, the server restarted, the
 * network failed — it is opened again after a backoff with jitter, with a fresh token. The
 * server keeps no history for streams: messages committed while it was down are not replayed
 * (query `GET /messages` with `since` to catch up).
 */
export function sseSubscribe(rest: Rest, filter: CompiledFilter, handler: MessageHandler, options: SseOptions): Subscription {
  const ready = deferred();
  const stop = new AbortController();
  const backoff = new Backoff(options.backoff);
  const path = `/messages/stream${filter.query() ? `?${filter.query()}` : ''}`;
  const parser = () =>
    new SseParser(options.maxEventBytes, (event) => {
      if (event.event !== 'message') return;
      let message: Message;
      try {
        message = JSON.parse(event.data) as Message;
      } catch {
        throw new ClientError('NITROGEN_CLIENT_PROTOCOL', 'an SSE message event whose data is not JSON');
      }
      callHandler(handler, message);
    });

  const run = async () => {
    while (!stop.signal.aborted) {
      let openedAt = 0;
      let error: Error | null = null;
      try {
        const res = await rest.send('GET', path, undefined, { signal: stop.signal, timeoutMs: 0 });
        openedAt = Date.now();
        ready.resolve();
        await readEvents(res.body!, parser(), stop.signal);
      } catch (err) {
        error = err as Error;
      }
      if (stop.signal.aborted) return;
      if (error instanceof ClientError && !error.retryable && error.code !== 'NITROGEN_CLIENT_PROTOCOL' && error.status !== undefined && error.status !== 401) {
        ready.reject(error);
        options.onRefused(error);
        return;
      }
      options.onInterrupted(error);
      if (openedAt > 0 && Date.now() - openedAt >= options.resetAfterMs) backoff.reset();
      await sleep(backoff.after(error), stop.signal);
    }
  };
  void run();
  return {
    ready: ready.promise,
    close: async () => stop.abort(),
  };
}
