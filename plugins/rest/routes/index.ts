import type { RestDeps, RestOptions } from '../context.js';
import { openApiDocument } from '../openapi.js';
import { route, type Route } from '../route.js';
import { NoQuery } from '../schemas/queries.js';
import { OpenApiDocument } from '../schemas/responses.js';
import type { OpenStreams } from '../stream.js';
import type { StreamTickets } from '../stream-tickets.js';
import { certificateRoutes, onboardingRoutes, stateRoutes } from './devices.js';
import { messageRoutes } from './messages.js';
import { permissionRoutes } from './permissions.js';
import { principalRoutes } from './principals.js';
import { sinkRoutes } from './sinks.js';
import { headwaiterRoute, systemRoutes } from './system.js';

/**
 * Every REST route, in the order they are matched, with the OpenAPI document built from them
 * all (itself included) once, at construction: a schema that cannot be described stops the start.
 */
export function restRoutes(base: string, deps: RestDeps, options: RestOptions, streams: OpenStreams, tickets: StreamTickets, started: number): Route[] {
  const routes: Route[] = [...principalRoutes(deps), ...onboardingRoutes(deps), ...certificateRoutes(deps), ...stateRoutes(deps), ...messageRoutes(deps, options, streams, tickets), ...permissionRoutes(deps), ...sinkRoutes(deps), headwaiterRoute(deps), ...systemRoutes(deps, started)];
  let document: Record<string, unknown> = {};
  routes.push(
    route({
      method: 'get',
      path: '/openapi.json',
      public: true,
      tag: 'system',
      summary: 'This document: the OpenAPI 3.1 description of the REST API',
      query: NoQuery,
      responses: { 200: { description: 'The document', body: OpenApiDocument } },
      errors: [],
      handle: () => ({ status: 200, body: document }),
    }),
  );
  document = openApiDocument(routes, base);
  return routes;
}
