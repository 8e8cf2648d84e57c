import type Router from '@koa/router';
import { randomUUID } from 'node:crypto';
import { NitrogenError } from '../../../core/errors.js';
import { PRINCIPAL_ID_PATTERN } from '../../../core/message.js';
import { ADMIN_ID } from '../../../core/permissions.js';
import { ACTIONS, type Action, type Permission, type Principal } from '../../../core/ports/principal.js';
import { parseIsoTime } from '../../../core/time.js';
import { readJson } from '../body.js';
import { checkParams } from '../params.js';
import { principalOf, requireAllowed, type RestContext, type RestDeps } from '../context.js';

const FIELDS = new Set(['issuedTo', 'principalFor', 'action', 'authorized', 'priority', 'expires']);

function invalid(field: string, message: string): NitrogenError {
  return new NitrogenError('NITROGEN_ERR_VALIDATION', `${field}: ${message}`, { details: { field } });
}

function principalField(raw: Record<string, unknown>, field: string): string | null {
  const value = raw[field];
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string' || !PRINCIPAL_ID_PATTERN.test(value)) throw invalid(field, 'must be a principal id, or null for any');
  return value;
}

function parsePermission(body: unknown): Permission {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalid('body', 'must be a JSON object');
  const raw = body as Record<string, unknown>;
  for (const key in raw) if (!FIELDS.has(key)) throw invalid(key, 'is not a permission field');
  if (typeof raw.authorized !== 'boolean') throw invalid('authorized', 'must be a boolean');
  if (raw.action !== undefined && raw.action !== null && !ACTIONS.includes(raw.action as Action)) throw invalid('action', `must be one of ${ACTIONS.join(', ')}, or null for any`);
  if (raw.priority !== undefined && (!Number.isInteger(raw.priority) || (raw.priority as number) < 0 || (raw.priority as number) > 2 ** 31)) {
    throw invalid('priority', 'must be a non-negative integer (lower is evaluated first)');
  }
  const permission: Permission = {
    id: randomUUID(),
    issuedTo: principalField(raw, 'issuedTo'),
    principalFor: principalField(raw, 'principalFor'),
    action: (raw.action ?? null) as Action | null,
    authorized: raw.authorized,
    priority: (raw.priority as number | undefined) ?? 1000,
    createdAt: new Date().toISOString(),
  };
  if (raw.expires !== undefined) {
    const ms = parseIsoTime(raw.expires);
    if (Number.isNaN(ms)) throw invalid('expires', 'must be an ISO-8601 time with Z or an offset');
    permission.expires = new Date(ms).toISOString();
  }
  return permission;
}

export function permissionRoutes(router: Router, deps: RestDeps): void {
  const { identity, registry } = deps;

  /** A caller sees the records about itself, and those for principals it administers. */
  function mayList(actor: Principal, p: Permission): boolean {
    return (
      identity.authorize(actor, 'admin', null) ||
      p.issuedTo === actor.id ||
      p.principalFor === actor.id ||
      (p.principalFor !== null && identity.authorize(actor, 'admin', p.principalFor))
    );
  }

  router.get('/permissions', async (ctx: RestContext) => {
    checkParams(ctx.query, []);
    const actor = principalOf(ctx);
    ctx.body = { permissions: (await registry.listPermissions()).filter((p) => mayList(actor, p)) };
  });

  router.post('/permissions', async (ctx: RestContext) => {
    const permission = parsePermission(await readJson(ctx));
    // Granting on a principal takes `admin` on it; a grant for any principal takes system admin.
    requireAllowed(identity, principalOf(ctx), 'admin', permission.principalFor);
    if (permission.issuedTo === ADMIN_ID) throw invalid('issuedTo', 'the admin principal needs no permissions');
    await registry.createPermission(permission);
    await identity.permissionsChanged();
    ctx.status = 201;
    ctx.body = { permission };
  });

  router.delete('/permissions/:id', async (ctx: RestContext) => {
    const actor = principalOf(ctx);
    const permission = (await registry.listPermissions()).find((p) => p.id === ctx.params.id);
    // A record the caller could not list answers as absent.
    if (!permission || !mayList(actor, permission)) throw new NitrogenError('NITROGEN_ERR_NOT_FOUND', `no permission '${ctx.params.id}'`);
    requireAllowed(identity, actor, 'admin', permission.principalFor);
    await registry.deletePermission(permission.id);
    await identity.permissionsChanged();
    ctx.status = 204;
  });
}
