import Koa from 'koa';
import type { IncomingMessage, RequestListener, Server } from 'node:http';
import { inject, injectable } from '../../core/di.js';
import { NitrogenError, isNitrogenError } from '../../core/errors.js';
import { parseDuration } from '../../core/duration.js';
import { endpointUrl, listen } from '../../core/listen.js';
import { TlsFiles } from '../../core/tls.js';
import { originOf, RestDeps, RestOptionsToken, type BodyLimits, type RestOptions, type RestState } from './context.js';
import { createHttpServer } from './http-server.js';
import { isClientGone, logRequestError, ThrottledWarning } from './logging.js';
import { routers } from './route.js';
import { restRoutes } from './routes/index.js';
import { cors } from './cors.js';
import { OpenStreams } from './stream.js';
import { StreamTickets } from './stream-tickets.js';

const API_BASE = '/api/v1';
/**
 * The only paths served without an access token, compared exactly. Everything else, known
 * route or not, in any letter case, needs a token first: login is checked by default, not by
 * a list of what to protect, and the routers match case-sensitively so no other spelling of a
 * protected path reaches its handler.
 */
const PUBLIC_PATHS = new Set([`${API_BASE}/principals/auth`, `${API_BASE}/devices/register`, `${API_BASE}/headwaiter`, `${API_BASE}/openapi.json`, '/health', '/ready', '/metrics']);

/** The one path a stream ticket opens (plugins/rest/stream-tickets.ts). */
const STREAM_PATH = `${API_BASE}/messages/stream`;

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
  private readonly servers: Server[] = [];
  private tlsFiles?: TlsFiles;
  private readonly tickets: StreamTickets;
  private readonly app = new Koa<RestState>();
  private readonly streams: OpenStreams;
  /** Before authentication a body is only a login: a few hundred bytes. */
  private readonly publicBody: BodyLimits;
  private readonly authenticatedBody: BodyLimits;
  private readonly saturated: ThrottledWarning;

  constructor(
    @inject(RestOptionsToken) private readonly options: RestOptions,
    @inject(RestDeps) private readonly deps: RestDeps,
  ) {
    const maxDepth = deps.config.limits.maxJsonDepth;
    this.publicBody = { maxBytes: options.maxAuthBodyBytes, bytesOption: 'maxAuthBodyBytes', maxDepth };
    this.authenticatedBody = { maxBytes: options.maxBodyBytes, bytesOption: 'maxBodyBytes', maxDepth };
    this.saturated = new ThrottledWarning(deps.logger, 'REST requests refused with 503: ingestion is saturated (ingest.maxPending)');
    this.streams = new OpenStreams(options, deps.metrics);
    this.tickets = new StreamTickets(parseDuration(options.streamTicketTtl), options.maxStreams);
    this.app.proxy = false;
    // Errors koa meets outside the middleware, such as a response cut off by the client.
    this.app.on('error', (err: unknown) => {
      if (isClientGone(err)) deps.logger.debug({ code: (err as NodeJS.ErrnoException).code }, 'REST client went away during the response');
      else deps.logger.error({ err }, 'REST response failed');
    });
    this.app.use(cors({ origins: options.corsOrigins ?? [], maxAge: options.corsMaxAge }));
    this.app.use(this.errors());
    this.app.use(this.webApps());
    this.app.use(this.authenticate());
    this.app.use(this.bodyLimits());
    for (const router of routers(restRoutes(API_BASE, deps, options, this.streams, this.tickets, Date.now()), API_BASE)) this.app.use(router.routes());
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

  /**
   * The files of web applications (the portal), by exact path, before authentication: a page
   * loads before anyone logs in. Only GET and HEAD, only the paths mounted; the API's own paths
   * are never shadowed: a file mounted under the base path or on a public path is not served.
   */
  private webApps(): Koa.Middleware<RestState> {
    const { webApps } = this.deps;
    return (ctx, next) => {
      const asset = ctx.method === 'GET' || ctx.method === 'HEAD' ? webApps.get(ctx.path) : undefined;
      if (!asset || ctx.path.startsWith(`${API_BASE}/`) || PUBLIC_PATHS.has(ctx.path)) return next();
      ctx.set('Cache-Control', asset.cacheControl);
      ctx.set('X-Content-Type-Options', 'nosniff');
      ctx.set('Vary', 'Accept-Encoding');
      ctx.set('ETag', asset.etag);
      for (const [name, value] of Object.entries(asset.headers ?? {})) ctx.set(name, value);
      ctx.type = asset.contentType;
      ctx.status = 200;
      if (ctx.fresh) {
        ctx.status = 304;
        return undefined;
      }
      if (asset.gzip && ctx.acceptsEncodings('gzip', 'identity') === 'gzip') {
        ctx.set('Content-Encoding', 'gzip');
        ctx.body = asset.gzip;
      } else ctx.body = asset.body;
      return undefined;
    };
  }

  private authenticate(): Koa.Middleware<RestState> {
    return async (ctx, next) => {
      if (PUBLIC_PATHS.has(ctx.path)) return next();
      const header = ctx.get('authorization');
      const ticket = ctx.query.ticket;
      if (header === '' && ctx.path === STREAM_PATH && typeof ticket === 'string') {
        const holder = this.tickets.redeem(ticket);
        // Disabled or deleted since the ticket was issued: its revocation event has passed already.
        if (!(await this.deps.registry.getPrincipal(holder.principal.id))?.enabled) throw new NitrogenError('NITROGEN_ERR_TOKEN_INVALID', 'the stream ticket was revoked with its principal');
        ctx.state.principal = holder.principal;
        ctx.state.tokenExpires = holder.tokenExpires;
        if (holder.actor !== undefined) ctx.state.actor = holder.actor;
        return next();
      }
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
    const { options, deps } = this;
    const host = options.host ?? deps.config.host;
    // koa answers its own errors (app.onerror): the promise its callback returns never rejects.
    const callback = this.app.callback() as RequestListener;
    const urls: string[] = [];
    if (options.port !== false) {
      const server = createHttpServer(options, callback, deps.logger, deps.metrics);
      this.servers.push(server);
      urls.push(endpointUrl('http', host, await listen(server, options.port, host)) + API_BASE);
    }
    if (options.tlsPort !== undefined && options.tls) {
      const files = (this.tlsFiles = new TlsFiles(options.tls, deps.logger, 'rest'));
      const server = createHttpServer(options, callback, deps.logger, deps.metrics, files.secureContext);
      files.watch((context) => (server as unknown as import('node:tls').Server).setSecureContext(context));
      this.servers.push(server);
      const https = endpointUrl('https', host, await listen(server, options.tlsPort, host)) + API_BASE;
      deps.endpoints.https = https;
      urls.push(https);
    }
    deps.endpoints.rest = options.publicUrl ?? urls[0];
    deps.logger.info({ endpoints: urls }, 'REST listening');
  }

  async stop(): Promise<void> {
    this.tlsFiles?.stop();
    // SSE streams never go idle by themselves.
    for (const stream of this.streams.responses) stream.destroy();
    await Promise.all(
      this.servers.map(async (server) => {
        // Stop accepting; let requests in flight finish; drop idle keep-alive and SSE connections.
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        const force = setTimeout(() => server.closeAllConnections(), 5000);
        force.unref();
        await closed;
        clearTimeout(force);
      }),
    );
  }
}
