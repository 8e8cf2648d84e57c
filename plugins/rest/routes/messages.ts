import { z } from 'zod';
import { NitrogenError } from '../../../core/errors.js';
import { encodeMessage, type Message } from '../../../core/message.js';
import type { MessageQuery } from '../../../core/ports/store.js';
import { Envelope } from '../../../core/schemas/envelope.js';
import { mayRead, principalOf, type RestDeps, type RestOptions } from '../context.js';
import { JsonText, route, type Route } from '../route.js';
import { MessageFilters, messageFilter, messageQuery } from '../schemas/queries.js';
import { MessagePage, Messages, OneMessage } from '../schemas/responses.js';
import { openStream, type OpenStreams } from '../stream.js';
import type { StreamTickets } from '../stream-tickets.js';
import { UtcTime } from '../../../core/schemas/common.js';

const TAG = 'messages';

/**
 * Message responses are written from each message's own encoding (core/message.ts), not by koa's
 * JSON.stringify of the whole page: the text is cached for messages just ingested, and a stored
 * message that cannot be encoded is served with its body replaced instead of failing the page.
 */
function messagesText(messages: readonly Message[], next?: string | null): JsonText {
  return new JsonText(`{"messages":[${messages.map(encodeMessage).join(',')}]${next === undefined ? '' : `,"next":${JSON.stringify(next)}`}}`);
}

export function messageRoutes(deps: RestDeps, options: RestOptions, streams: OpenStreams, tickets: StreamTickets): Route[] {
  const { identity, store, ingestor, config } = deps;
  return [
    route({
      method: 'post',
      path: '/messages',
      tag: TAG,
      summary: 'Ingest one envelope, or an array of them (all or none); answered after the durable commit',
      // The envelope parser on the hot path (core/message.ts) validates: the schema documents it.
      body: { schema: z.union([Envelope, z.array(Envelope).min(1).max(config.limits.maxBatch)]), parse: (value: unknown) => value },
      responses: { 201: { description: 'The normalized messages, in request order', body: Messages } },
      errors: [
        'NITROGEN_ERR_SENDER_MISMATCH',
        'NITROGEN_ERR_FORBIDDEN',
        'NITROGEN_ERR_BATCH_TOO_LARGE',
        'NITROGEN_ERR_QUOTA_EXCEEDED',
        'NITROGEN_ERR_OVERLOADED',
        'NITROGEN_ERR_UNAVAILABLE',
        'NITROGEN_ERR_STORE',
        'NITROGEN_ERR_SINK_RETRYABLE',
        'NITROGEN_ERR_SINK_REJECTED',
      ],
      async handle(ctx, input) {
        const body = await input.body();
        const messages = await ingestor.ingest(principalOf(ctx), Array.isArray(body) ? body : [body], { transport: 'rest', rejectWhenBusy: true });
        // Commit → acknowledge → fan out: koa writes the 201 when this handler's promise settles,
        // before the next turn of the event loop.
        setImmediate(() => ingestor.fanOut(messages, { transport: 'rest' }));
        return { status: 201, body: messagesText(messages) };
      },
    }),
    route({
      method: 'get',
      path: '/messages',
      tag: TAG,
      summary: 'Query stored messages the caller may view',
      description: 'A page may hold fewer than `limit` messages, even none, while `next` is not null: follow `next` until it is null, with the same filters and order.',
      query: messageQuery(config.limits),
      responses: { 200: { description: 'A page of messages', body: MessagePage } },
      errors: ['NITROGEN_ERR_UNAVAILABLE'],
      async handle(ctx, { query: parsed }) {
        const actor = principalOf(ctx);
        const { order, limit, cursor, ...filters } = parsed;
        const query: MessageQuery = { ...messageFilter(filters), order, limit };
        if (cursor !== undefined) query.cursor = cursor;
        const scope = identity.scopeOf(actor, 'view');
        if (scope !== 'all') query.scope = { from: [...scope], to: [actor.id] };
        const page = await store.query(query);
        // The scope narrows the scan; this check applies denials a wildcard grant leaves open.
        return {
          status: 200,
          body: messagesText(
            page.items.filter((m) => mayRead(identity, actor, 'view', m)),
            page.next ?? null,
          ),
        };
      },
    }),
    route({
      method: 'post',
      path: '/messages/stream/tickets',
      tag: TAG,
      summary: 'A ticket that opens one stream without an Authorization header (for EventSource)',
      description: "Use it within `streamTicketTtl` as `GET /messages/stream?ticket=…`; it opens one stream, on this instance, for the caller, and no longer than the caller's token.",
      responses: { 201: { description: 'The ticket', body: z.strictObject({ ticket: z.string(), expiresAt: UtcTime }) } },
      errors: ['NITROGEN_ERR_OVERLOADED'],
      handle(ctx) {
        const { principal, tokenExpires, actor } = ctx.state;
        return { status: 201, body: tickets.issue(actor === undefined ? { principal, tokenExpires } : { principal, tokenExpires, actor }) };
      },
    }),
    // Before /messages/:id, which would otherwise take "stream" for an id.
    route({
      method: 'get',
      path: '/messages/stream',
      tag: TAG,
      summary: 'Messages as they are committed, as Server-Sent Events',
      description: 'One `message` event per message, its `data` a normalized envelope (the Message schema). Headers and a `: connected` comment are sent at once; a `: heartbeat` comment every `heartbeatSeconds`.',
      query: MessageFilters.extend({ ticket: z.string().optional().meta({ description: 'A stream ticket (POST /messages/stream/tickets), in place of the Authorization header.' }) }),
      responses: { 200: { description: 'An event stream', mediaType: 'text/event-stream', body: z.string() } },
      errors: ['NITROGEN_ERR_QUOTA_EXCEEDED', 'NITROGEN_ERR_OVERLOADED'],
      handle(ctx, { query: { ticket: _ticket, ...query } }) {
        openStream(ctx, deps, messageFilter(query), options.heartbeatSeconds, streams);
      },
    }),
    route({
      method: 'get',
      path: '/messages/:id',
      tag: TAG,
      summary: 'One message',
      description: "Without `from`: the caller's own message with this id, else the first stored under it. A message the caller may not read answers 404, as an absent one does.",
      params: z.strictObject({ id: z.string().meta({ description: 'A message id.' }) }),
      query: z.strictObject({ from: z.string().optional().meta({ description: 'The sender: (from, id) is the key.' }) }),
      responses: { 200: { description: 'The message', body: OneMessage } },
      errors: ['NITROGEN_ERR_NOT_FOUND', 'NITROGEN_ERR_UNAVAILABLE'],
      async handle(ctx, { params: { id }, query: { from } }) {
        const actor = principalOf(ctx);
        // (from, id) is the key. Without `from`: the caller's own message, else the first stored
        // under the id; a server-made id cannot be named before it is handed out, so no other
        // sender can have stored a message under it first.
        const message = from !== undefined ? await store.get(id, from) : ((await store.get(id, actor.id)) ?? (await store.get(id)));
        // A message the caller may not view answers as absent: its existence is not told either.
        if (!message || !mayRead(identity, actor, 'view', message)) throw new NitrogenError('NITROGEN_ERR_NOT_FOUND', `no message '${id}'`);
        return { status: 200, body: new JsonText(`{"message":${encodeMessage(message)}}`) };
      },
    }),
  ];
}
