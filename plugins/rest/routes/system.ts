import type Router from '@koa/router';
import type { RestDeps } from '../context.js';
import { checkParams } from '../params.js';

/** Unauthenticated routes: discovery, liveness and metrics. */
export function systemRoutes(router: Router, deps: RestDeps, started: number): void {
  router.get('/health', (ctx) => {
    ctx.body = { status: 'ok', uptimeSeconds: Math.round((Date.now() - started) / 1000), pendingCommits: deps.ingestor.pending };
  });

  router.get('/metrics', async (ctx) => {
    ctx.type = deps.metrics.contentType;
    ctx.body = await deps.metrics.metrics();
  });
}

export function headwaiterRoute(router: Router, deps: RestDeps): void {
  router.get('/headwaiter', (ctx) => {
    checkParams(ctx.query, []);
    ctx.body = { endpoints: { rest: deps.endpoints.rest ?? null, mqtt: deps.endpoints.mqtt ?? null } };
  });
}
