import type Router from '@koa/router';
import { NitrogenError } from '../../../core/errors.js';
import { encodeMessage, type Message } from '../../../core/message.js';
import type { MessageQuery } from '../../../core/ports/store.js';
import { readJson } from '../body.js';
import { mayRead, principalOf, type RestContext, type RestDeps, type RestOptions } from '../context.js';
import { FILTER_PARAMS, checkParams, limitParam, messageFilter, orderParam, singleParam } from '../params.js';
import { openStream, type OpenStreams } from '../stream.js';

/**
 * Message responses are written from each message's own encoding (core/message.ts), not by koa's
 * JSON.stringify of the whole page: the text is cached for messages just ingested, and a stored
 * message that cannot be encoded is served with its body replaced instead of failing the page.
 */
function respondWithMessages(ctx: RestContext, fields: { messages: readonly Message[] } | { message: Message }, next?: string | null): void {
  ctx.type = 'application/json';
  if ('message' in fields) ctx.body = `{"message":${encodeMessage(fields.message)}}`;
  else ctx.body = `{"messages":[${fields.messages.map(encodeMessage).join(',')}]${next === undefined ? '' : `,"next":${JSON.stringify(next)}`}}`;
}

export function messageRoutes(router: Router, deps: RestDeps, options: RestOptions, streams: OpenStreams): void {
  const { identity, store, ingestor, config } = deps;

  router.post('/messages', async (ctx: RestContext) => {
    const body = await readJson(ctx);
    const messages = await ingestor.ingest(principalOf(ctx), Array.isArray(body) ? body : [body], { transport: 'rest', rejectWhenBusy: true });
    ctx.status = 201;
    respondWithMessages(ctx, { messages });
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
    respondWithMessages(ctx, { messages: page.items.filter((m) => mayRead(identity, actor, 'view', m)) }, page.next ?? null);
  });

  // Before /messages/:id, which would otherwise take "stream" for an id.
  router.get('/messages/stream', async (ctx: RestContext) => {
    checkParams(ctx.query, [...FILTER_PARAMS]);
    openStream(ctx, deps, messageFilter(ctx.query), options.heartbeatSeconds, streams);
  });

  router.get('/messages/:id', async (ctx: RestContext) => {
    checkParams(ctx.query, ['from']);
    const id = ctx.params.id!;
    const from = singleParam(ctx.query, 'from');
    // (from, id) is the key. Without `from`: the caller's own message, else the first stored
    // under the id; a server-made id cannot be named before it is handed out, so no other
    // sender can have stored a message under it first.
    const message = from !== undefined ? await store.get(id, from) : ((await store.get(id, principalOf(ctx).id)) ?? (await store.get(id)));
    // A message the caller may not view answers as absent: its existence is not told either.
    if (!message || !mayRead(identity, principalOf(ctx), 'view', message)) {
      throw new NitrogenError('NITROGEN_ERR_NOT_FOUND', `no message '${ctx.params.id}'`);
    }
    respondWithMessages(ctx, { message });
  });
}
