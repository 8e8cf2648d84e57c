import type { Role } from '../../../core/config.js';
import type { RestDeps, RestOptions } from '../context.js';
import { openApiDocument } from '../openapi.js';
import { route, type Method, type Route } from '../route.js';
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
  const roles = new Set<Role>(deps.config.cluster.roles);
  const all: Route[] = [
    ...principalRoutes(deps),
    ...onboardingRoutes(deps),
    ...certificateRoutes(deps),
    ...stateRoutes(deps),
    ...messageRoutes(deps, options, streams, tickets),
    ...permissionRoutes(deps),
    ...sinkRoutes(deps),
    headwaiterRoute(deps),
    ...systemRoutes(deps, started),
  ];
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

/**
 * Which role serves a route (docs/cluster.md, "Roles"), the first match deciding: what takes a
 * message is ingestion, what reads them consumption, what manages principals and their
 * credentials registry. Routes matching none (health, metrics, headwaiter, sinks, this document)
 * are served by every instance.
 */
const ROUTE_ROLES: readonly { method?: Method; path: RegExp; role: Role }[] = [
  { method: 'post', path: /^\/messages$/, role: 'ingestion' },
  { path: /^\/messages(\/|$)/, role: 'consumption' },
  { method: 'get', path: /^\/principals\/:id\/state$/, role: 'consumption' },
  // A change of desired state is a command to the device: a message committed and delivered.
  { path: /^\/principals\/:id\/twin\//, role: 'ingestion' },
  { path: /^\/(principals|permissions|api-keys|devices|claims|certificate-authorities)(\/|$)/, role: 'registry' },
];

function roleOf(r: Route): Role | undefined {
  return ROUTE_ROLES.find((entry) => (entry.method === undefined || entry.method === r.method) && entry.path.test(r.path))?.role;
}
