import type Router from '@koa/router';
import { NitrogenError } from '../../../core/errors.js';
import { PRINCIPAL_ID_PATTERN } from '../../../core/message.js';
import { ADMIN_ID } from '../../../core/permissions.js';
import { PRINCIPAL_TYPES, publicPrincipal, type PrincipalRecord, type PrincipalType } from '../../../core/ports/principal.js';
import type { PrincipalPatch } from '../../../core/ports/registry.js';
import { randomBytes } from 'node:crypto';
import { readJson } from '../body.js';
import { originOf, principalOf, requireAllowed, type RestContext, type RestDeps } from '../context.js';
import { checkParams, limitParam, singleParam } from '../params.js';

const REGISTRATION_FIELDS = new Set(['type', 'id', 'name', 'tags', 'password']);
const PATCH_FIELDS = new Set(['name', 'tags', 'enabled']);
const MIN_PASSWORD = 12;

function invalid(where: string, message: string): NitrogenError {
  return new NitrogenError('NITROGEN_ERR_VALIDATION', `${where}: ${message}`, { details: { field: where } });
}

function checkName(value: unknown, where: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 256) throw invalid(where, 'must be a string of 1-256 characters');
  return value;
}

function checkTags(value: unknown, where: string): string[] {
  if (!Array.isArray(value) || value.length > 32 || value.some((t) => typeof t !== 'string' || t.length === 0 || t.length > 64 || t.includes(','))) {
    throw invalid(where, 'must be an array of at most 32 strings of 1-64 characters without commas');
  }
  return value as string[];
}

interface Registration {
  record: PrincipalRecord;
  secret?: string;
  password?: string;
}

function parseRegistration(input: unknown, where: string, deps: RestDeps, now: string): Registration {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw invalid(where, 'must be a JSON object');
  const raw = input as Record<string, unknown>;
  for (const key in raw) if (!REGISTRATION_FIELDS.has(key)) throw invalid(`${where}.${key}`, 'is not a registration field');
  if (!PRINCIPAL_TYPES.includes(raw.type as PrincipalType)) throw invalid(`${where}.type`, `must be one of ${PRINCIPAL_TYPES.join(', ')}`);
  const type = raw.type as PrincipalType;
  let id: string;
  if (raw.id === undefined) id = `${type}-${randomBytes(8).toString('hex')}`;
  else if (typeof raw.id === 'string' && PRINCIPAL_ID_PATTERN.test(raw.id)) id = raw.id;
  else throw invalid(`${where}.id`, 'must match [A-Za-z0-9._-]{1,128}');
  const record: PrincipalRecord = { id, type, tags: raw.tags === undefined ? [] : checkTags(raw.tags, `${where}.tags`), createdAt: now, enabled: true };
  if (raw.name !== undefined) record.name = checkName(raw.name, `${where}.name`);
  if (raw.password !== undefined) {
    // Only a person picks a secret; devices and apps get 256 random bits from the server.
    if (type !== 'user') throw invalid(`${where}.password`, 'only user principals choose a password');
    if (typeof raw.password !== 'string' || raw.password.length < MIN_PASSWORD) throw invalid(`${where}.password`, `must be at least ${MIN_PASSWORD} characters`);
    return { record, password: raw.password };
  }
  const { secret, secretHash } = deps.identity.newSecret();
  record.secretHash = secretHash;
  return { record, secret };
}

export function principalRoutes(router: Router, deps: RestDeps): void {
  const { identity, registry, config } = deps;

  router.post('/principals/auth', async (ctx) => {
    const body = await readJson(ctx);
    const { id, secret } = (body ?? {}) as { id?: unknown; secret?: unknown };
    if (typeof id !== 'string' || typeof secret !== 'string') throw invalid('body', 'must be {"id": string, "secret": string}');
    const { principal } = await deps.authenticator.secret(id, secret, originOf(ctx));
    deps.presence.seenNow(principal.id);
    ctx.body = { ...(await identity.issueToken(principal)), principal };
  });

  router.post('/principals', async (ctx: RestContext) => {
    requireAllowed(identity, principalOf(ctx), 'admin', null);
    const body = await readJson(ctx);
    const inputs = Array.isArray(body) ? body : [body];
    if (inputs.length === 0) throw invalid('body', 'no principals given');
    if (inputs.length > config.limits.maxBatch) {
      throw new NitrogenError('NITROGEN_ERR_BATCH_TOO_LARGE', `at most ${config.limits.maxBatch} principals per request, got ${inputs.length}`);
    }
    const now = new Date().toISOString();
    const registrations = inputs.map((input, i) => parseRegistration(input, Array.isArray(body) ? `[${i}]` : 'body', deps, now));
    for (const r of registrations) if (r.password !== undefined) r.record.secretHash = await identity.hashPassword(r.password);
    await registry.createPrincipals(registrations.map((r) => r.record));
    ctx.status = 201;
    ctx.body = { principals: registrations.map((r) => (r.secret === undefined ? { principal: publicPrincipal(r.record) } : { principal: publicPrincipal(r.record), secret: r.secret })) };
  });

  router.get('/principals', async (ctx: RestContext) => {
    checkParams(ctx.query, ['type', 'tag', 'limit', 'cursor']);
    const actor = principalOf(ctx);
    const type = singleParam(ctx.query, 'type');
    if (type !== undefined && !PRINCIPAL_TYPES.includes(type as PrincipalType)) throw invalid('type', `must be one of ${PRINCIPAL_TYPES.join(', ')}`);
    const scope = identity.scopeOf(actor, 'view');
    const page = await registry.listPrincipals(
      { type: type as PrincipalType | undefined, tag: singleParam(ctx.query, 'tag'), ids: scope === 'all' ? undefined : [...scope] },
      { limit: limitParam(ctx.query, config.limits.defaultQueryLimit, config.limits.maxQueryLimit), cursor: singleParam(ctx.query, 'cursor') },
    );
    // With a wildcard grant, individual denials still hold: a page may come back short; follow `next`.
    const visible = page.items.filter((p) => identity.authorize(actor, 'view', p.id));
    ctx.body = { principals: visible.map(publicPrincipal), next: page.next };
  });

  async function find(id: string): Promise<PrincipalRecord> {
    const record = await registry.getPrincipal(id);
    if (!record) throw new NitrogenError('NITROGEN_ERR_NOT_FOUND', `no principal '${id}'`);
    return record;
  }

  router.get('/principals/:id', async (ctx: RestContext) => {
    checkParams(ctx.query, []);
    requireAllowed(identity, principalOf(ctx), 'view', ctx.params.id!);
    ctx.body = { principal: publicPrincipal(await find(ctx.params.id!)) };
  });

  router.patch('/principals/:id', async (ctx: RestContext) => {
    const id = ctx.params.id!;
    requireAllowed(identity, principalOf(ctx), 'admin', id);
    const body = await readJson(ctx);
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalid('body', 'must be a JSON object');
    const raw = body as Record<string, unknown>;
    const patch: PrincipalPatch = {};
    for (const key in raw) if (!PATCH_FIELDS.has(key)) throw invalid(key, 'cannot be changed (name, tags, enabled can)');
    if (raw.name !== undefined) patch.name = checkName(raw.name, 'name');
    if (raw.tags !== undefined) patch.tags = checkTags(raw.tags, 'tags');
    if (raw.enabled !== undefined) {
      if (typeof raw.enabled !== 'boolean') throw invalid('enabled', 'must be a boolean');
      if (id === ADMIN_ID && !raw.enabled) throw new NitrogenError('NITROGEN_ERR_FORBIDDEN', 'the admin principal cannot be disabled');
      patch.enabled = raw.enabled;
    }
    ctx.body = { principal: publicPrincipal(await registry.updatePrincipal(id, patch)) };
    if (patch.enabled === false) deps.principalEvents.revoke(id, 'disabled');
  });

  /** The bootstrap admin's credentials are its own: no permission record reaches them. */
  function guardAdminCredentials(ctx: RestContext, id: string): void {
    if (id === ADMIN_ID && principalOf(ctx).id !== ADMIN_ID) throw new NitrogenError('NITROGEN_ERR_FORBIDDEN', "only the admin principal changes the admin's credentials");
  }

  router.post('/principals/:id/secret', async (ctx: RestContext) => {
    const id = ctx.params.id!;
    requireAllowed(identity, principalOf(ctx), 'admin', id);
    guardAdminCredentials(ctx, id);
    await find(id);
    const { secret, secretHash } = identity.newSecret();
    ctx.body = { principal: publicPrincipal(await registry.updatePrincipal(id, { secretHash })), secret };
    deps.principalEvents.revoke(id, 'secret rotated');
  });

  router.put('/principals/:id/password', async (ctx: RestContext) => {
    const id = ctx.params.id!;
    const actor = principalOf(ctx);
    // A person changes their own password; an administrator may set it.
    if (actor.id !== id) requireAllowed(identity, actor, 'admin', id);
    guardAdminCredentials(ctx, id);
    const record = await find(id);
    if (record.type !== 'user') throw invalid('id', 'only user principals have a password; rotate a device or app secret with POST /principals/:id/secret');
    const body = await readJson(ctx);
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalid('body', 'must be {"password": string}');
    for (const key of Object.keys(body)) if (key !== 'password') throw invalid(key, 'is not a field here (password is)');
    const { password } = body as { password?: unknown };
    if (typeof password !== 'string' || password.length < MIN_PASSWORD) throw invalid('password', `must be at least ${MIN_PASSWORD} characters`);
    await registry.updatePrincipal(id, { secretHash: await identity.hashPassword(password) });
    deps.principalEvents.revoke(id, 'password changed');
    ctx.status = 204;
  });

  router.post('/principals/:id/impersonate', async (ctx: RestContext) => {
    const id = ctx.params.id!;
    // One level only: a token obtained by impersonation must not outlive its impersonator by making another.
    if (ctx.state.actor !== undefined) throw new NitrogenError('NITROGEN_ERR_FORBIDDEN', 'a token obtained by impersonation cannot impersonate');
    requireAllowed(identity, principalOf(ctx), 'impersonate', id);
    // Impersonation must not reach the bootstrap superuser: no record can grant that.
    if (id === ADMIN_ID && principalOf(ctx).id !== ADMIN_ID) throw new NitrogenError('NITROGEN_ERR_FORBIDDEN', 'the admin principal cannot be impersonated');
    const principal = publicPrincipal(await find(id));
    if (!principal.enabled) throw new NitrogenError('NITROGEN_ERR_PRINCIPAL_DISABLED', `principal '${id}' is disabled`);
    ctx.body = { ...(await identity.issueToken(principal, { actor: principalOf(ctx) })), principal };
  });

  router.delete('/principals/:id', async (ctx: RestContext) => {
    const id = ctx.params.id!;
    requireAllowed(identity, principalOf(ctx), 'admin', id);
    if (id === ADMIN_ID) throw new NitrogenError('NITROGEN_ERR_FORBIDDEN', 'the admin principal cannot be deleted');
    await registry.deletePrincipal(id);
    await identity.permissionsChanged();
    deps.principalEvents.revoke(id, 'deleted');
    ctx.status = 204;
  });
}
