import { z } from 'zod';
import { ErrorCodes, type ErrorCode } from '../../core/errors.js';
import { isList } from './params.js';
import type { Route } from './route.js';
import { ErrorBody } from './schemas/responses.js';

type Json = Record<string, unknown>;

/** Every route can answer these: a request that is not HTTP, or too slow, or a server at its connection cap, or a fault of its own. */
const ANY_ROUTE: ErrorCode[] = ['NITROGEN_ERR_VALIDATION', 'NITROGEN_ERR_REQUEST_TIMEOUT', 'NITROGEN_ERR_OVERLOADED', 'NITROGEN_ERR_INTERNAL'];
/** Checking the bearer token (rest-transport.ts, authenticate). */
const WITH_TOKEN: ErrorCode[] = ['NITROGEN_ERR_UNAUTHENTICATED', 'NITROGEN_ERR_TOKEN_EXPIRED', 'NITROGEN_ERR_TOKEN_INVALID', 'NITROGEN_ERR_PRINCIPAL_DISABLED', 'NITROGEN_ERR_RATE_LIMITED'];
/** Reading a JSON body (body.ts). */
const WITH_BODY: ErrorCode[] = ['NITROGEN_ERR_MALFORMED_JSON', 'NITROGEN_ERR_PAYLOAD_TOO_LARGE', 'NITROGEN_ERR_UNSUPPORTED_MEDIA_TYPE'];

/**
 * The OpenAPI 3.1 document of the REST API, built from the same route table and zod schemas that
 * mount and validate the routes (route.ts), so it cannot drift from what the server does.
 * Request schemas are shown as clients write them (zod's input side), responses as the server
 * writes them. Schemas that carry an `id` (`.meta({ id })`) become `components.schemas`.
 */
export function openApiDocument(routes: readonly Route[], base: string): Json {
  const components: Record<string, Json> = {};

  function schemaOf(schema: z.ZodType, io: 'input' | 'output'): Json {
    const json = z.toJSONSchema(schema, { io, unrepresentable: 'any', target: 'draft-2020-12' }) as Json;
    delete json.$schema;
    const defs = (json.$defs ?? {}) as Record<string, Json>;
    delete json.$defs;
    for (const [name, definition] of Object.entries(defs)) {
      const rewritten = refsToComponents(definition);
      // One name, one schema: a name used for two shapes (an input and an output) is a mistake.
      if (components[name] && JSON.stringify(components[name]) !== JSON.stringify(rewritten)) throw new Error(`OpenAPI: two schemas named ${name}`);
      components[name] = rewritten;
    }
    return refsToComponents(json);
  }

  function parameters(spec: Route): Json[] {
    const out: Json[] = [];
    const add = (where: 'path' | 'query', shape: Record<string, z.ZodType>) => {
      for (const [name, field] of Object.entries(shape)) {
        const { description, ...schema } = schemaOf(field, 'input');
        out.push({
          name,
          in: where,
          required: where === 'path' || !field.safeParse(undefined).success,
          ...(description === undefined ? {} : { description }),
          schema,
          // Lists: repeated (`from=a&from=b`); the server also splits values at commas.
          ...(isList(field) ? { style: 'form', explode: true } : {}),
        });
      }
    };
    if (spec.params) add('path', spec.params.shape);
    if (spec.query) add('query', spec.query.shape);
    return out;
  }

  function responses(spec: Route): Json {
    const out: Record<string, Json> = {};
    for (const [status, response] of Object.entries(spec.responses)) {
      out[status] = { description: response.description };
      if (response.body) out[status].content = { [response.mediaType ?? 'application/json']: { schema: schemaOf(response.body, 'output') } };
    }
    const codes = new Set<ErrorCode>([...spec.errors, ...ANY_ROUTE, ...(spec.public ? [] : WITH_TOKEN), ...(spec.body ? WITH_BODY : [])]);
    const byStatus = new Map<number, ErrorCode[]>();
    for (const code of codes) byStatus.set(ErrorCodes[code].status, [...(byStatus.get(ErrorCodes[code].status) ?? []), code]);
    for (const [status, list] of [...byStatus].sort(([a], [b]) => a - b)) {
      const error = { allOf: [schemaOf(ErrorBody, 'output'), { properties: { error: { properties: { code: { enum: list.sort() } } } } }] };
      const answer = out[status];
      const declared = (answer?.content as Record<string, { schema: Json }> | undefined)?.['application/json']?.schema;
      // A status a route answers itself (503 from /ready) may also be a transport's error.
      out[status] = {
        description: answer ? `${answer.description as string}; or an error: ${list.join(', ')}` : list.join(', '),
        content: { 'application/json': { schema: declared ? { anyOf: [declared, error] } : error } },
      };
    }
    return out;
  }

  const paths: Record<string, Record<string, Json>> = {};
  for (const spec of routes) {
    const path = (spec.root ? '' : base) + spec.path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
    const operation: Json = {
      operationId: operationId(spec),
      tags: [spec.tag],
      summary: spec.summary,
      ...(spec.description === undefined ? {} : { description: spec.description }),
      security: spec.public ? [] : [{ bearer: [] }],
      parameters: parameters(spec),
      ...(spec.body ? { requestBody: { required: true, content: { 'application/json': { schema: schemaOf(spec.body.schema, 'input') } } } } : {}),
      responses: responses(spec),
    };
    (paths[path] ??= {})[spec.method] = operation;
  }

  return {
    openapi: '3.1.1',
    info: {
      title: 'Nitrogen REST API',
      version: base.split('/').pop() ?? 'v1',
      description: 'Device identity, telemetry ingestion, query and live subscription, permissions and sinks. Errors are `{"error": {"code", "message", "details"?}}`; every code is listed in docs/errors.md.',
    },
    paths,
    components: {
      schemas: Object.fromEntries(Object.entries(components).sort(([a], [b]) => a.localeCompare(b))),
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'An access token from POST /principals/auth.' } },
    },
  };
}

function refsToComponents(schema: Json): Json {
  return JSON.parse(JSON.stringify(schema).replaceAll('"#/$defs/', '"#/components/schemas/')) as Json;
}

/** `get /principals/:id/secret` → `getPrincipalsByIdSecret`. */
function operationId(spec: Route): string {
  const words = spec.path
    .split('/')
    .filter(Boolean)
    .map((part) => (part.startsWith(':') ? `By-${part.slice(1)}` : part));
  return (
    spec.method +
    words
      .join('-')
      .split(/[-.]/)
      .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
      .join('')
  );
}
