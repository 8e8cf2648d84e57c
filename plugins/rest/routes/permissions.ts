import { z } from 'zod';
import { PermissionGrant } from '../../../core/schemas/permissions.js';
import { principalOf, type RestDeps } from '../context.js';
import { route, type Route } from '../route.js';
import { NoQuery } from '../schemas/queries.js';
import { OnePermission, Permissions } from '../schemas/responses.js';
import { jsonBody } from '../validation.js';

const TAG = 'permissions';

/** Permission records (docs/api.md, "Permissions"); the rules are core/permission-records.ts's. */
export function permissionRoutes(deps: RestDeps): Route[] {
  const { permissionRecords } = deps;
  return [
    route({
      method: 'get',
      path: '/permissions',
      tag: TAG,
      summary: 'The permission records the caller may see, in evaluation order',
      description: 'Every record for a caller with `admin` on the system; otherwise those issued to it, those for it, and those for principals it administers. No paging.',
      query: NoQuery,
      responses: { 200: { description: 'The records', body: Permissions } },
      errors: [],
      async handle(ctx) {
        return { status: 200, body: { permissions: await permissionRecords.visibleTo(principalOf(ctx)) } };
      },
    }),
    route({
      method: 'post',
      path: '/permissions',
      tag: TAG,
      summary: 'Create a permission record; in force when answered',
      description: "Needs `admin` on the record's `principalFor` (on the system when it is null). Records cannot be issued to `admin`.",
      body: jsonBody(PermissionGrant),
      responses: { 201: { description: 'The record, with its id and createdAt', body: OnePermission } },
      errors: ['NITROGEN_ERR_FORBIDDEN'],
      async handle(ctx, { body }) {
        return { status: 201, body: { permission: await permissionRecords.grant(principalOf(ctx), await body()) } };
      },
    }),
    route({
      method: 'delete',
      path: '/permissions/:id',
      tag: TAG,
      summary: 'Delete a permission record; no longer in force when answered',
      description: 'A record the caller may not see answers 404, as an absent one does.',
      params: z.strictObject({ id: z.string().meta({ description: 'A permission record id.' }) }),
      responses: { 204: { description: 'Deleted' } },
      errors: ['NITROGEN_ERR_FORBIDDEN', 'NITROGEN_ERR_NOT_FOUND'],
      async handle(ctx, { params }) {
        await permissionRecords.revoke(principalOf(ctx), params.id);
        return { status: 204 };
      },
    }),
  ];
}
