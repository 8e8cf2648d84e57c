import Koa from 'koa';
import type { IncomingMessage, Server } from 'node:http';
import { inject, injectable } from '../../core/di.js';
import { NitrogenError, isNitrogenError } from '../../core/errors.js';
import { endpointUrl, listen } from '../../core/listen.js';
import { originOf, RestDeps, RestOptionsToken, type BodyLimits, type RestOptions, type RestState } from './context.js';
import { createHttpServer } from './http-server.js';
import { isClientGone, logRequestError, ThrottledWarning } from './logging.js';
import { routers } from './route.js';
import { restRoutes } from './routes/index.js';
import { OpenStreams } from './stream.js';

export const API_BASE = '/api/v1';
/**
 * The only paths served without an access token, compared exactly. Everything else, known
 * route or not, in any letter case, needs a token first: login is checked by default, not by
 * a list of what to protect, and the routers match case-sensitively so no other spelling of a
 * protected path reaches its handler.
 */
const PUBLIC_PATHS = new Set([`${API_BASE}/principals/auth`, `${API_BASE}/headwaiter`, `${API_BASE}/openapi.json`, '/health', '/ready', '/metrics']);

/** A request announced a body (RFC 9112 §6.3) that has not been read to its end. */
function hasUnreadBody(req: IncomingMessage): boolean {
  return !req.readableEnded && (req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0);
}

/**
 * The REST transport (docs/api.md) on koa. Every error leaves as
 * `{"error": {"code", "message"}}` with the status its code maps to (core/errors.ts).
 * Built by the plugin's container: its options and its dependencies are injected.
 */
@injectable()
export class RestTransport {
  private server?: Server;
  private readonly app = new Koa<RestState>();
  private readonly streams: OpenStreams;
  /** Before authentication a body is only a login: a few hundred bytes. */
  private readonly publicBody: BodyLimits;
  private readonly authenticatedBody: BodyLimits;
  private readonly saturated: ThrottledWarning;

  constructor(@inject(RestOptionsToken) private readonly options: RestOptions, @inject(RestDeps) private readonly deps: RestDeps) {
    const maxDepth = deps.config.limits.maxJsonDepth;
    this.publicBody = { maxBytes: options.maxAuthBodyBytes, bytesOption: 'maxAuthBodyBytes', maxDepth };
    this.authenticatedBody = { maxBytes: options.maxBodyBytes, bytesOption: 'maxBodyBytes', maxDepth };
    this.saturated = new ThrottledWarning(deps.logger, 'REST requests refused with 503: ingestion is saturated (ingest.maxPending)');
    this.streams = new OpenStreams(options, deps.metrics);
    this.app.proxy = false;
    // Errors koa meets outside the middleware, such as a response cut off by the client.
    this.app.on('error', (err: unknown) => {
      if (isClientGone(err)) deps.logger.debug({ code: (err as NodeJS.ErrnoException).code }, 'REST client went away during the response');
      else deps.logger.error({ err }, 'REST response failed');
    });
    this.app.use(this.errors());
    this.app.use(this.authenticate());
    this.app.use(this.bodyLimits());
    for (const router of routers(restRoutes(API_BASE, deps, options, this.streams, Date.now()), API_BASE)) this.app.use(router.routes());
    this.app.use((ctx) => {
      throw new NitrogenError('NITROGEN_ERR_NOT_FOUND', `no route ${ctx.method} ${ctx.path}`);
    });
  }

  private errors(): Koa.Middleware<RestState> {
    return async (ctx, next) => {
      try {
        await next();
      } catch (err) {
        logRequestError(this.deps.logger, { method: ctx.method, path: ctx.path }, err, this.saturated);
        const known = isNitrogenError(err) ? err : undefined;
        const error = known ?? new NitrogenError('NITROGEN_ERR_INTERNAL', 'internal error', { cause: err });
        ctx.status = error.status;
        if (error.retryAfter !== undefined) ctx.set('Retry-After', String(error.retryAfter));
        if (error.status === 401) ctx.set('WWW-Authenticate', 'Bearer');
        const message = error.expose ? error.message : 'internal error';
        ctx.body = { error: { code: error.code, message, ...(error.expose && error.details ? { details: error.details } : {}) } };
      }
      // Answered before its body was read (401, 413, 415…): node stops reading a request once
      // its response is sent, so on a kept-alive connection the client would stall mid-upload
      // until keepAliveTimeout. Closing after the answer frees the connection at once.
      if (hasUnreadBody(ctx.req)) ctx.set('Connection', 'close');
    };
  }

  private authenticate(): Koa.Middleware<RestState> {
    return async (ctx, next) => {
      if (PUBLIC_PATHS.has(ctx.path)) return next();
      const header = ctx.get('authorization');
      const match = /^Bearer\s+(\S+)$/i.exec(header);
      if (!match) throw new NitrogenError('NITROGEN_ERR_UNAUTHENTICATED', 'an Authorization: Bearer <accessToken> header is required');
      const { principal, expiresAt, actor } = await this.deps.authenticator.token(match[1]!, originOf(ctx));
      ctx.state.principal = principal;
      ctx.state.tokenExpires = expiresAt ?? Infinity;
      if (actor !== undefined) ctx.state.actor = actor;
      return next();
    };
  }

  /** After `authenticate`, which reads only headers: a body is read under the limits of who sent it. */
  private bodyLimits(): Koa.Middleware<RestState> {
    return (ctx, next) => {
      ctx.state.bodyLimits = ctx.state.principal ? this.authenticatedBody : this.publicBody;
      return next();
    };
  }

  async start(): Promise<void> {
    const server = createHttpServer(this.options, this.app.callback(), this.deps.logger, this.deps.metrics);
    this.server = server;
    const host = this.options.host ?? this.deps.config.host;
    const port = await listen(server, this.options.port, host);
    this.deps.endpoints.rest = this.options.publicUrl ?? endpointUrl('http', host, port) + API_BASE;
    this.deps.logger.info({ endpoint: this.deps.endpoints.rest }, 'REST listening');
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    // Stop accepting; let requests in flight finish; drop idle keep-alive and SSE connections.
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    const force = setTimeout(() => server.closeAllConnections(), 5000);
    force.unref();
    // SSE streams never go idle by themselves.
    for (const stream of this.streams.responses) stream.destroy();
    await closed;
    clearTimeout(force);
  }
}
