import type { ServerResponse } from 'node:http';
import { Gauge, type Registry as MetricsRegistry } from 'prom-client';
import { NitrogenError } from '../../core/errors.js';
import { encodeMessage, type Message } from '../../core/message.js';
import { matchesQuery } from '../../core/query.js';
import { mayRead, principalOf, type RestContext, type RestDeps } from './context.js';
import type { MessageFilter } from './schemas/queries.js';

/** A subscriber that falls this far behind is disconnected rather than buffered without bound. */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;

/**
 * The open SSE streams, capped in all (`maxStreams`) and per principal (`maxStreamsPerPrincipal`):
 * each holds a connection, a bus listener and up to MAX_BUFFERED_BYTES of memory for as long as
 * its token lives, so one token must not open them without end.
 */
export class OpenStreams {
  readonly responses = new Set<ServerResponse>();
  private readonly perPrincipal = new Map<string, number>();
  private readonly gauge: Gauge;

  constructor(
    private readonly limits: { maxStreams: number; maxStreamsPerPrincipal: number },
    metrics: MetricsRegistry,
  ) {
    this.gauge = new Gauge({ name: 'nitrogen_rest_streams', help: 'Open SSE streams (GET /messages/stream)', registers: [metrics] });
  }

  /** Counts a new stream of `principal`, or throws 429 NITROGEN_ERR_QUOTA_EXCEEDED / 503 NITROGEN_ERR_OVERLOADED. */
  open(principal: string, res: ServerResponse): void {
    const mine = this.perPrincipal.get(principal) ?? 0;
    if (mine >= this.limits.maxStreamsPerPrincipal) {
      throw new NitrogenError('NITROGEN_ERR_QUOTA_EXCEEDED', `'${principal}' already has ${mine} open streams (maxStreamsPerPrincipal)`, {
        details: { limit: 'maxStreamsPerPrincipal', max: this.limits.maxStreamsPerPrincipal },
      });
    }
    if (this.responses.size >= this.limits.maxStreams) {
      const error = new NitrogenError('NITROGEN_ERR_OVERLOADED', `the server holds its maximum of ${this.limits.maxStreams} streams (maxStreams)`, {
        details: { limit: 'maxStreams', max: this.limits.maxStreams },
      });
      error.retryAfter = 5;
      throw error;
    }
    this.perPrincipal.set(principal, mine + 1);
    this.responses.add(res);
    this.gauge.inc();
    res.once('close', () => {
      this.responses.delete(res);
      this.gauge.dec();
      const left = (this.perPrincipal.get(principal) ?? 1) - 1;
      if (left === 0) this.perPrincipal.delete(principal);
      else this.perPrincipal.set(principal, left);
    });
  }
}

/**
 * `GET /messages/stream`: Server-Sent Events, one envelope per event. Headers and a
 * `: connected` comment go out at once, so a client knows it is subscribed before anything is
 * published; a comment heartbeat keeps proxies from closing an idle stream.
 */
export function openStream(ctx: RestContext, deps: RestDeps, filter: MessageFilter, heartbeatSeconds: number, streams: OpenStreams): void {
  const actor = principalOf(ctx);
  const res = ctx.res;
  streams.open(actor.id, res);
  ctx.respond = false;
  res.writeHead(200, {
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-cache, no-transform',
    Connection: 'keep-alive',
    'X-Accel-Buffering': 'no',
  });
  res.write(': connected\n\n');
  ctx.req.socket.setNoDelay(true);
  ctx.req.socket.setTimeout(0);

  const unsubscribe = deps.bus.subscribe((messages: readonly Message[]) => {
    let out = '';
    for (const message of messages) {
      if (!matchesQuery(message, filter) || !mayRead(deps.identity, actor, 'subscribe', message)) continue;
      out += `id: ${message.id}\nevent: message\ndata: ${encodeMessage(message)}\n\n`;
    }
    if (out.length === 0) return;
    if (res.writableLength > MAX_BUFFERED_BYTES) {
      deps.logger.warn({ principal: actor.id }, 'SSE subscriber too slow; closing its stream');
      res.destroy();
      return;
    }
    res.write(out);
  });
  const heartbeat = setInterval(() => res.write(': heartbeat\n\n'), heartbeatSeconds * 1000);
  heartbeat.unref();
  // The stream lives no longer than the token that opened it, nor than the principal's rights.
  const expiry = setTimeout(() => res.destroy(), Math.min(ctx.state.tokenExpires - Date.now(), 2 ** 31 - 1));
  expiry.unref();
  const onRevoked = (id: string) => {
    if (id === actor.id || id === ctx.state.actor) res.destroy();
  };
  deps.principalEvents.on('revoked', onRevoked);
  res.on('close', () => {
    clearInterval(heartbeat);
    clearTimeout(expiry);
    deps.principalEvents.off('revoked', onRevoked);
    unsubscribe();
  });
}
