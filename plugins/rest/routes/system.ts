import type { RestDeps } from '../context.js';
import { route, type Route } from '../route.js';
import { NoQuery } from '../schemas/queries.js';
import { Headwaiter, Liveness, PrometheusText, Readiness } from '../schemas/responses.js';

const TAG = 'system';

/**
 * Unauthenticated routes for machines that watch the server, at the root: liveness, readiness
 * and metrics. `/health` and `/metrics` read no parameter and ignore any, as scrapers add their own.
 */
export function systemRoutes(deps: RestDeps, started: number): Route[] {
  return [
    // Liveness: answered while the process serves requests, whatever its components say.
    route({
      method: 'get',
      path: '/health',
      root: true,
      public: true,
      tag: TAG,
      summary: 'Liveness: 200 whenever the process answers',
      responses: { 200: { description: 'Alive', body: Liveness } },
      errors: [],
      handle() {
        return { status: 200, body: { status: 'ok', uptimeSeconds: Math.round((Date.now() - started) / 1000), pendingCommits: deps.ingestor.pending } };
      },
    }),
    // Readiness: 503 while starting or stopping, or while a critical component is down. It reads
    // the last probe's findings, so asking it costs nothing however often it is asked.
    route({
      method: 'get',
      path: '/ready',
      root: true,
      public: true,
      tag: TAG,
      summary: 'Readiness, with the status of each component',
      query: NoQuery,
      responses: { 200: { description: 'Ready', body: Readiness }, 503: { description: 'Not ready: starting, stopping, or a critical component is down', body: Readiness } },
      errors: [],
      handle() {
        const report = deps.health.report();
        return { status: report.ready ? 200 : 503, body: report };
      },
    }),
    route({
      method: 'get',
      path: '/metrics',
      root: true,
      public: true,
      tag: TAG,
      summary: 'Prometheus metrics',
      responses: { 200: { description: 'The metrics', mediaType: 'text/plain', body: PrometheusText } },
      errors: [],
      async handle() {
        return { status: 200, type: deps.metrics.contentType, body: await deps.metrics.metrics() };
      },
    }),
  ];
}

export function headwaiterRoute(deps: RestDeps): Route {
  return route({
    method: 'get',
    path: '/headwaiter',
    public: true,
    tag: TAG,
    summary: 'Where the transports listen, so a device needs one URL',
    query: NoQuery,
    responses: { 200: { description: 'The endpoints; null for a transport that is not running', body: Headwaiter } },
    errors: [],
    handle() {
      const { rest, mqtt, ...others } = deps.endpoints;
      const more = Object.fromEntries(Object.entries(others).filter(([, url]) => url !== undefined));
      return { status: 200, body: { endpoints: { rest: rest ?? null, mqtt: mqtt ?? null, ...more } } };
    },
  });
}
