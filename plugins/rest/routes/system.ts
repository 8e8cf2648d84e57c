import type Router from '@koa/router';
import type { RestDeps } from '../context.js';
import { checkParams } from '../params.js';

/** Unauthenticated routes for machines that watch the server: liveness, readiness and metrics. */
export function systemRoutes(router: Router, deps: RestDeps, started: number): void {
  // Liveness: answered while the process serves requests, whatever its components say.
  router.get('/health', (ctx) => {
    ctx.body = { status: 'ok', uptimeSeconds: Math.round((Date.now() - started) / 1000), pendingCommits: deps.ingestor.pending };
  });

  // Readiness: 503 while starting or stopping, or while a critical component is down. It reads
  // the last probe's findings, so asking it costs nothing however often it is asked.
  router.get('/ready', (ctx) => {
    checkParams(ctx.query, []);
    const report = deps.health.report();
    ctx.status = report.ready ? 200 : 503;
    ctx.body = report;
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
