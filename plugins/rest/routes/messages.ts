import type Router from '@koa/router';
import type { ServerResponse } from 'node:http';
import { NitrogenError } from '../../../core/errors.js';
import type { MessageQuery } from '../../../core/ports/store.js';
import { readJson } from '../body.js';
import { mayRead, principalOf, type RestContext, type RestDeps, type RestOptions } from '../context.js';
import { FILTER_PARAMS, checkParams, limitParam, messageFilter, orderParam, singleParam } from '../params.js';
import { openStream } from '../stream.js';

export function messageRoutes(router: Router, deps: RestDeps, options: RestOptions, streams: Set<ServerResponse>): void {
  const { identity, store, ingestor, config } = deps;

  router.post('/messages', async (ctx: RestContext) => {
    const body = await readJson(ctx.req, options.maxBodyBytes);
    const messages = await ingestor.ingest(principalOf(ctx), Array.isArray(body) ? body : [body], { transport: 'rest', rejectWhenBusy: true });
    ctx.status = 201;
    ctx.body = { messages };
    // Commit → acknowledge → fan out: koa writes the 201 when this handler's promise settles,
    // before the next turn of the event loop.
    setImmediate(() => ingestor.fanOut(messages, { transport: 'rest' }));
  });

  router.get('/messages', async (ctx: RestContext) => {
    checkParams(ctx.query, [...FILTER_PARAMS, 'order', 'limit', 'cursor']);
    const actor = principalOf(ctx);
    const query: MessageQuery = {
      ...messageFilter(ctx.query),
      order: orderParam(ctx.query),
      limit: limitParam(ctx.query, config.limits.defaultQueryLimit, config.limits.maxQueryLimit),
    };
    const cursor = singleParam(ctx.query, 'cursor');
    if (cursor !== undefined) query.cursor = cursor;
    const scope = identity.scopeOf(actor, 'view');
    if (scope !== 'all') query.scope = { from: [...scope], to: [actor.id] };
    const page = await store.query(query);
    // The scope narrows the scan; this check applies denials a wildcard grant leaves open.
    ctx.body = { messages: page.items.filter((m) => mayRead(identity, actor, 'view', m)), next: page.next };
  });

  // Before /messages/:id, which would otherwise take "stream" for an id.
  router.get('/messages/stream', async (ctx: RestContext) => {
    checkParams(ctx.query, [...FILTER_PARAMS]);
    openStream(ctx, deps, messageFilter(ctx.query), options.heartbeatSeconds, streams);
  });

  router.get('/messages/:id', async (ctx: RestContext) => {
    checkParams(ctx.query, []);
    // The caller's own message first: another sender may have chosen the same id.
    const message = (await store.get(ctx.params.id!, principalOf(ctx).id)) ?? (await store.get(ctx.params.id!));
    // A message the caller may not view answers as absent: its existence is not told either.
    if (!message || !mayRead(identity, principalOf(ctx), 'view', message)) {
      throw new NitrogenError('NITROGEN_ERR_NOT_FOUND', `no message '${ctx.params.id}'`);
    }
    ctx.body = { message };
  });
}
