import type { ServerResponse } from 'node:http';
import { encodeMessage, type Message } from '../../core/message.js';
import { matchesQuery } from '../../core/query.js';
import { mayRead, principalOf, type RestContext, type RestDeps } from './context.js';
import type { MessageFilter } from './params.js';

/** A subscriber that falls this far behind is disconnected rather than buffered without bound. */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;

/**
 * `GET /messages/stream`: Server-Sent Events, one envelope per event. Headers and a
 * `: connected` comment go out at once, so a client knows it is subscribed before anything is
 * published; a comment heartbeat keeps proxies from closing an idle stream.
 */
export function openStream(ctx: RestContext, deps: RestDeps, filter: MessageFilter, heartbeatSeconds: number, streams: Set<ServerResponse>): void {
  const actor = principalOf(ctx);
  const res = ctx.res;
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
  streams.add(res);
  res.on('close', () => {
    streams.delete(res);
    clearInterval(heartbeat);
    clearTimeout(expiry);
    deps.principalEvents.off('revoked', onRevoked);
    unsubscribe();
  });
}
