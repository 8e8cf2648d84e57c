import Router from '@koa/router';
import { decodeJwt } from 'jose';
import Koa from 'koa';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { NitrogenError, isNitrogenError } from '../../core/errors.js';
import { endpointUrl, listen } from '../../core/listen.js';
import type { RestDeps, RestOptions, RestState } from './context.js';
import { messageRoutes } from './routes/messages.js';
import { permissionRoutes } from './routes/permissions.js';
import { principalRoutes } from './routes/principals.js';
import { sinkRoutes } from './routes/sinks.js';
import { headwaiterRoute, systemRoutes } from './routes/system.js';

export const API_BASE = '/api/v1';
/**
 * The only paths served without an access token, compared exactly. Everything else, known
 * route or not, in any letter case, needs a token first: login is checked by default, not by
 * a list of what to protect, and the routers match case-sensitively so no other spelling of a
 * protected path reaches its handler.
 */
const PUBLIC_PATHS = new Set([`${API_BASE}/principals/auth`, `${API_BASE}/headwaiter`, '/health', '/ready', '/metrics']);

/**
 * The REST transport (docs/api.md) on koa. Every error leaves as
 * `{"error": {"code", "message"}}` with the status its code maps to (core/errors.ts).
 */
export class RestTransport {
  private server?: Server;
  private readonly app = new Koa<RestState>();
  /** Open SSE responses, closed on stop. */
  private readonly streams = new Set<ServerResponse>();

  constructor(private readonly options: RestOptions, private readonly deps: RestDeps) {
    this.app.proxy = false;
    this.app.use(this.errors());
    this.app.use(this.authenticate());
    const api = new Router({ prefix: API_BASE, sensitive: true });
    principalRoutes(api, deps, options);
    messageRoutes(api, deps, options, this.streams);
    permissionRoutes(api, deps, options);
    sinkRoutes(api, deps, options);
    headwaiterRoute(api, deps);
    const root = new Router({ sensitive: true });
    systemRoutes(root, deps, Date.now());
    this.app.use(api.routes());
    this.app.use(root.routes());
    this.app.use((ctx) => {
      throw new NitrogenError('NITROGEN_ERR_NOT_FOUND', `no route ${ctx.method} ${ctx.path}`);
    });
  }

  private errors(): Koa.Middleware<RestState> {
    return async (ctx, next) => {
      try {
        await next();
      } catch (err) {
        const known = isNitrogenError(err) ? err : undefined;
        if (!known || known.status >= 500) this.deps.logger.error({ err, method: ctx.method, path: ctx.path }, 'request failed');
        const error = known ?? new NitrogenError('NITROGEN_ERR_INTERNAL', 'internal error', { cause: err });
        ctx.status = error.status;
        if (error.retryAfter !== undefined) ctx.set('Retry-After', String(error.retryAfter));
        if (error.status === 401) ctx.set('WWW-Authenticate', 'Bearer');
        const message = error.expose ? error.message : 'internal error';
        ctx.body = { error: { code: error.code, message, ...(error.expose && error.details ? { details: error.details } : {}) } };
      }
    };
  }

  private authenticate(): Koa.Middleware<RestState> {
    return async (ctx, next) => {
      if (PUBLIC_PATHS.has(ctx.path)) return next();
      const header = ctx.get('authorization');
      const match = /^Bearer\s+(\S+)$/i.exec(header);
      if (!match) throw new NitrogenError('NITROGEN_ERR_UNAUTHENTICATED', 'an Authorization: Bearer <accessToken> header is required');
      ctx.state.principal = await this.deps.identity.authenticateToken(match[1]!);
      ctx.state.tokenExpires = (decodeJwt(match[1]!).exp ?? Infinity) * 1000;
      return next();
    };
  }

  async start(): Promise<void> {
    const server = createServer(this.app.callback());
    this.server = server;
    server.keepAliveTimeout = 65_000;
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
    for (const stream of this.streams) stream.destroy();
    await closed;
    clearTimeout(force);
  }
}
