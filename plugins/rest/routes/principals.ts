import { z } from 'zod';
import { parseDuration } from '../../../core/duration.js';
import { NitrogenError, type ErrorCode } from '../../../core/errors.js';
import { Credentials, PasswordChange, PrincipalChanges, Registration } from '../../../core/schemas/principals.js';
import { originOf, principalOf, type RestDeps } from '../context.js';
import { route, type Route } from '../route.js';
import { NoQuery, principalQuery } from '../schemas/queries.js';
import { OnePrincipal, PrincipalPage, RegisteredPrincipals, RotatedSecret, TokenGrant } from '../schemas/responses.js';
import { jsonBody, parseWith, type BodySpec } from '../validation.js';

/** A duration in ms, or -1 for one that is not. */
function overlapMs(value: string | number): number {
  try {
    return parseDuration(value);
  } catch {
    return -1;
  }
}

const ById = z.strictObject({ id: z.string().meta({ description: 'A principal id.' }) });
const TAG = 'principals';

/**
 * One registration, or an array of them. An array is refused when empty, and counted against
 * `limits.maxBatch` before any entry is looked at; each entry is named by its index (`[3].tags`),
 * a single one by `body` (`body.tags`).
 */
function registrations(deps: RestDeps): BodySpec<Registration[]> {
  return {
    schema: z.union([Registration, z.array(Registration).min(1).max(deps.config.limits.maxBatch)]),
    parse(value) {
      if (!Array.isArray(value)) return [parseWith(Registration, value, 'body')];
      if (value.length === 0) throw new NitrogenError('NITROGEN_ERR_VALIDATION', 'body: no principals given', { details: { field: 'body' } });
      deps.principals.checkBatch(value.length);
      return value.map((entry, i) => parseWith(Registration, entry, `[${i}]`));
    },
  };
}

/** Registration, credentials and the registry (docs/api.md, "REST"); the rules are core/principals.ts's. */
export function principalRoutes(deps: RestDeps): Route[] {
  const { principals, config } = deps;
  const ON_A_PRINCIPAL: ErrorCode[] = ['NITROGEN_ERR_FORBIDDEN', 'NITROGEN_ERR_NOT_FOUND'];
  return [
    route({
      method: 'post',
      path: '/principals/auth',
      public: true,
      tag: TAG,
      summary: 'Exchange a principal id and secret (or password) for an access token',
      body: jsonBody(Credentials, { whole: 'must be {"id": string, "secret": string}' }),
      responses: { 200: { description: 'An access token', body: TokenGrant } },
      errors: ['NITROGEN_ERR_BAD_CREDENTIALS', 'NITROGEN_ERR_PRINCIPAL_DISABLED', 'NITROGEN_ERR_RATE_LIMITED', 'NITROGEN_ERR_OVERLOADED'],
      async handle(ctx, input) {
        const { id, secret } = await input.body();
        const { principal } = await deps.authenticator.secret(id, secret, originOf(ctx));
        deps.presence.seenNow(principal.id);
        return { status: 200, body: { ...(await deps.identity.issueToken(principal)), principal } };
      },
    }),
    route({
      method: 'post',
      path: '/principals',
      tag: TAG,
      summary: 'Register one principal, or an array of them (all or none)',
      description: 'Needs `admin` on the system, checked before the body is read. A `secret` is answered for every principal that did not choose a password: the only time it is shown.',
      body: registrations(deps),
      responses: { 201: { description: 'The principals, in request order', body: RegisteredPrincipals } },
      errors: ['NITROGEN_ERR_FORBIDDEN', 'NITROGEN_ERR_CONFLICT', 'NITROGEN_ERR_BATCH_TOO_LARGE', 'NITROGEN_ERR_OVERLOADED'],
      async handle(ctx, input) {
        principals.authorizeRegistration(principalOf(ctx));
        return { status: 201, body: { principals: await principals.register(principalOf(ctx), await input.body()) } };
      },
    }),
    route({
      method: 'get',
      path: '/principals',
      tag: TAG,
      summary: 'List the principals the caller may view, ordered by id',
      description: 'A page may hold fewer than `limit` principals when permission checks remove some: follow `next` until it is null.',
      query: principalQuery(config.limits),
      responses: { 200: { description: 'A page of principals', body: PrincipalPage } },
      errors: [],
      async handle(ctx, { query }) {
        const { limit, cursor, with: extra, ...filter } = query;
        const page = await principals.list(principalOf(ctx), filter, cursor === undefined ? { limit } : { limit, cursor });
        // The portal's device table: presence beside each principal, so a page is one request.
        const items = extra === 'presence' ? await Promise.all(page.items.map(async (p) => ({ ...p, presence: await deps.presence.state(p.id) }))) : page.items;
        return { status: 200, body: { principals: items, next: page.next } };
      },
    }),
    route({
      method: 'get',
      path: '/principals/:id',
      tag: TAG,
      summary: 'One principal',
      description: 'Needs `view` on it, checked first: 403 whether or not it exists.',
      params: ById,
      query: NoQuery,
      responses: { 200: { description: 'The principal', body: OnePrincipal } },
      errors: ON_A_PRINCIPAL,
      async handle(ctx, { params }) {
        return { status: 200, body: { principal: await principals.get(principalOf(ctx), params.id) } };
      },
    }),
    route({
      method: 'patch',
      path: '/principals/:id',
      tag: TAG,
      summary: 'Change name, tags or enabled; disabling ends its sessions',
      params: ById,
      body: jsonBody(PrincipalChanges),
      responses: { 200: { description: 'The principal as changed', body: OnePrincipal } },
      errors: ON_A_PRINCIPAL,
      async handle(ctx, { params, body }) {
        principals.authorizeChange(principalOf(ctx), params.id);
        return { status: 200, body: { principal: await principals.change(principalOf(ctx), params.id, await body()) } };
      },
    }),
    route({
      method: 'post',
      path: '/principals/:id/secret',
      tag: TAG,
      summary: 'Replace the secret with a new server-made one; ends its tokens and sessions, or with `overlap` keeps the old one valid that long',
      params: ById,
      query: z.strictObject({
        overlap: z
          .string()
          .refine((value) => overlapMs(value) >= 0 && overlapMs(value) <= overlapMs(config.devices.maxRotationOverlap), { error: `must be a duration such as 1h, at most devices.maxRotationOverlap (${config.devices.maxRotationOverlap})` })
          .optional()
          .meta({ description: 'How long the old secret, and tokens issued with it, stay valid beside the new one (`1h`, `7d`).' }),
      }),
      responses: { 200: { description: 'The principal and its new secret, shown only here', body: RotatedSecret } },
      errors: ON_A_PRINCIPAL,
      async handle(ctx, { params, query }) {
        return { status: 200, body: await principals.rotateSecret(principalOf(ctx), params.id, query.overlap === undefined ? 0 : overlapMs(query.overlap)) };
      },
    }),
    route({
      method: 'put',
      path: '/principals/:id/password',
      tag: TAG,
      summary: "Set a user's password; ends its tokens and sessions",
      description: 'The user itself, or a caller with `admin` on it. Who asks, and that `:id` is a user, are checked before the body is read.',
      params: ById,
      body: jsonBody(PasswordChange),
      responses: { 204: { description: 'Set' } },
      errors: [...ON_A_PRINCIPAL, 'NITROGEN_ERR_OVERLOADED'],
      async handle(ctx, { params, body }) {
        await principals.checkPasswordChange(principalOf(ctx), params.id);
        const { password } = await body();
        await principals.setPassword(principalOf(ctx), params.id, password);
        return { status: 204 };
      },
    }),
    route({
      method: 'post',
      path: '/principals/:id/impersonate',
      tag: TAG,
      summary: 'An access token for the principal, to a caller holding `impersonate` on it',
      params: ById,
      responses: { 200: { description: 'An access token naming the caller as its impersonator', body: TokenGrant } },
      errors: ON_A_PRINCIPAL,
      async handle(ctx, { params }) {
        return { status: 200, body: await principals.impersonate(principalOf(ctx), params.id, ctx.state.actor) };
      },
    }),
    route({
      method: 'delete',
      path: '/principals/:id',
      tag: TAG,
      summary: 'Delete the principal and the permission records issued to or for it; ends its sessions',
      params: ById,
      responses: { 204: { description: 'Deleted' } },
      errors: ON_A_PRINCIPAL,
      async handle(ctx, { params }) {
        await principals.delete(principalOf(ctx), params.id);
        return { status: 204 };
      },
    }),
  ];
}
