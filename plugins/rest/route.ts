import Router from '@koa/router';
import type { z } from 'zod';
import type { ErrorCode } from '../../core/errors.js';
import { readJson } from './body.js';
import type { RestContext } from './context.js';
import { parseQuery } from './params.js';
import { parseWith, type BodySpec } from './validation.js';

export type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';

/** One answer of a route: its JSON body's schema (none for 204), or another media type. */
interface ResponseSpec {
  description: string;
  body?: z.ZodType;
  /** When not `application/json`: `body` then describes the text. */
  mediaType?: string;
}

/** JSON text already encoded (messages carry their own cached encoding): written as is. */
export class JsonText {
  constructor(readonly text: string) {}
}

/** What a handler answers; nothing when it wrote the response itself (the SSE stream). */
interface Reply {
  status: number;
  body?: unknown;
  /** Content-Type when the body is not JSON. */
  type?: string;
}

interface RouteInput<P, Q, B> {
  params: P;
  query: Q;
  /** Reads and parses the body. Lazy: a handler refuses what it can before anything is uploaded. */
  body: () => Promise<B>;
}

/**
 * A REST route as data: from these the koa routes are mounted (mount below) and the OpenAPI
 * document is built (openapi.ts), so no route exists without the schemas of what it reads and
 * answers. Path and query parameters are parsed before the handler runs; the body when the
 * handler asks for it.
 */
export interface RouteSpec<P extends z.ZodObject = z.ZodObject, Q extends z.ZodObject = z.ZodObject, B = never> {
  method: Method;
  /** koa-router syntax (`/principals/:id`), under the API base path unless `root`. */
  path: string;
  root?: boolean;
  /** Served without an access token (the transport's PUBLIC_PATHS must list it). */
  public?: boolean;
  /** The OpenAPI tag the route is listed under. */
  tag: string;
  summary: string;
  description?: string;
  params?: P;
  /** Required for every GET under the base path: it refuses parameters it does not know. */
  query?: Q;
  body?: BodySpec<B>;
  responses: Record<number, ResponseSpec>;
  /** The error codes the route itself answers with; those of authentication and bodies are added. */
  errors: readonly ErrorCode[];
  /** Runs before the parameters are read: a check that must come first. */
  guard?: (ctx: RestContext) => void;
  handle(ctx: RestContext, input: RouteInput<z.output<P>, z.output<Q>, B>): Promise<Reply | void> | Reply | void;
}

// The table holds routes of many shapes; each was checked against its own when defined.
export type Route = RouteSpec<z.ZodObject, z.ZodObject, unknown>;

/** Defines a route, inferring its input types from its schemas. */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- zod's own type for an object schema with no fields
export function route<P extends z.ZodObject = z.ZodObject<{}>, Q extends z.ZodObject = z.ZodObject<{}>, B = never>(spec: RouteSpec<P, Q, B>): Route {
  return spec;
}

/**
 * The koa routers of a route table: one under `base`, one at the root. Routes are registered in
 * table order (a literal path before a parameter's), and match case-sensitively, so no other
 * spelling of a protected path reaches its handler.
 */
export function routers(routes: readonly Route[], base: string): Router[] {
  const api = new Router({ prefix: base, sensitive: true });
  const root = new Router({ sensitive: true });
  for (const spec of routes) {
    checkDescribed(spec);
    (spec.root ? root : api)[spec.method](spec.path, handler(spec));
  }
  return [api, root];
}

/** A route must say what it reads: its path parameters, and (for a GET under the base path) its query. */
function checkDescribed(spec: Route): void {
  const where = `${spec.method.toUpperCase()} ${spec.path}`;
  const inPath = [...spec.path.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => m[1]!).sort();
  const described = Object.keys(spec.params?.shape ?? {}).sort();
  if (inPath.join() !== described.join()) throw new Error(`route ${where}: path parameters (${inPath.join()}) and params schema (${described.join()}) differ`);
  if (spec.method === 'get' && !spec.root && !spec.query) throw new Error(`route ${where}: a GET under the base path needs a query schema`);
  if (Object.keys(spec.responses).length === 0) throw new Error(`route ${where}: no responses`);
}

function handler(spec: Route) {
  return async (ctx: RestContext): Promise<void> => {
    spec.guard?.(ctx);
    const params = spec.params ? parseWith(spec.params, ctx.params) : {};
    const query = spec.query ? parseQuery(spec.query, ctx.query) : {};
    const body = async () => spec.body!.parse(await readJson(ctx));
    const reply = await spec.handle(ctx, { params, query, body });
    if (!reply) return;
    ctx.status = reply.status;
    if (reply.body instanceof JsonText) {
      ctx.type = 'application/json';
      ctx.body = reply.body.text;
    } else if (reply.body !== undefined) {
      if (reply.type !== undefined) ctx.type = reply.type;
      ctx.body = reply.body;
    }
  };
}
