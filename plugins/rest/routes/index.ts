import type { Role } from '../../../core/config.js';
import type { RestDeps, RestOptions } from '../context.js';
import { openApiDocument } from '../openapi.js';
import { route, type Route } from '../route.js';
import { NoQuery } from '../schemas/queries.js';
import { OpenApiDocument } from '../schemas/responses.js';
import type { OpenStreams } from '../stream.js';
import { messageRoutes } from './messages.js';
import { permissionRoutes } from './permissions.js';
import { principalRoutes } from './principals.js';
import { sinkRoutes } from './sinks.js';
import { headwaiterRoute, systemRoutes } from './system.js';

/**
 * Every REST route, in the order they are matched, with the OpenAPI document built from them
 * all (itself included) once, at construction: a schema that cannot be described stops the start.
 */
export function restRoutes(base: string, deps: RestDeps, options: RestOptions, streams: OpenStreams, started: number): Route[] {
  const roles = new Set<Role>(deps.config.cluster.roles);
  const all: Route[] = [...principalRoutes(deps), ...messageRoutes(deps, options, streams), ...permissionRoutes(deps), ...sinkRoutes(deps), headwaiterRoute(deps), ...systemRoutes(deps, started)];
  // An instance serves the routes of its roles (docs/cluster.md, "Roles"): the others answer 404.
  const routes = all.filter((r) => {
    const role = roleOf(r);
    return role === undefined || roles.has(role);
  });
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

/** The role a route belongs to; system routes (health, metrics, headwaiter, sinks) belong to every instance. */
function roleOf(r: Route): Role | undefined {
  if (r.path.startsWith('/principals') || r.path.startsWith('/permissions')) return 'registry';
  if (r.path.startsWith('/messages')) return r.method === 'post' ? 'ingestion' : 'consumption';
  return undefined;
}
