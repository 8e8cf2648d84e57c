import type { Command } from '../command.js';
import { CliError } from '../exit-codes.js';
import { table, type Column } from '../output.js';
import { arg, enc } from './common.js';

interface Permission {
  id: string;
  issuedTo: string | null;
  principalFor: string | null;
  action: string | null;
  authorized: boolean;
  priority: number;
  expires?: string;
  createdAt: string;
}

const COLUMNS: Column<Permission>[] = [
  { header: 'id', value: (p) => p.id },
  { header: 'issued to', value: (p) => p.issuedTo ?? '(any)' },
  { header: 'on', value: (p) => p.principalFor ?? '(any)' },
  { header: 'action', value: (p) => p.action ?? '(any)' },
  { header: 'authorized', value: (p) => (p.authorized ? 'allow' : 'deny') },
  { header: 'priority', value: (p) => p.priority },
  { header: 'expires', value: (p) => p.expires },
];

/** `any` stands for null: every principal, or every action. */
const anyOr = (value: string): string | null => (value === 'any' ? null : value);

export const permissionCommands: Command[] = [
  {
    name: 'permissions list',
    summary: 'the permission records you may see, in evaluation order (GET /permissions)',
    async run(ctx) {
      const answer = await (await ctx.session()).request<{ permissions: Permission[] }>('GET', '/permissions');
      ctx.out.result(answer, () => table(answer.permissions, COLUMNS));
    },
  },
  {
    name: 'permissions grant',
    summary: 'create a permission record (POST /permissions)',
    args: [{ name: 'ACTION' }],
    options: {
      to: { type: 'string', value: 'ID', help: 'the principal it is issued to, or "any" (required)' },
      on: { type: 'string', value: 'ID', help: 'the principal it is for, or "any" for the system and everyone (required)' },
      deny: { type: 'boolean', help: 'a record that refuses instead of allowing' },
      priority: { type: 'string', value: 'N', help: 'lower is evaluated first (default 1000)' },
      expires: { type: 'string', value: 'TIME', help: 'ignored from this time on (ISO 8601, such as 2027-01-01T00:00Z)' },
    },
    help: 'ACTION is admin, view, subscribe, send, impersonate, or "any". Both --to and --on must be given,\n"any" included, so that a record for everyone is never made by leaving an option out.\nExample: nitrogen permissions grant subscribe --to fleet-app --on car-1',
    async run(ctx) {
      const { to, on, priority, expires } = ctx.options as Record<string, string | undefined>;
      if (to === undefined || on === undefined) throw new CliError('usage', 'permissions grant needs --to ID|any and --on ID|any');
      const body: Record<string, unknown> = { issuedTo: anyOr(to), principalFor: anyOr(on), action: anyOr(arg(ctx, 'ACTION')), authorized: !ctx.options.deny };
      if (priority !== undefined) {
        if (!/^[0-9]{1,10}$/.test(priority)) throw new CliError('usage', '--priority: must be a non-negative integer');
        body.priority = Number(priority);
      }
      if (expires !== undefined) body.expires = expires;
      const answer = await (await ctx.session()).request<{ permission: Permission }>('POST', '/permissions', body);
      ctx.out.result(answer, () => table([answer.permission], COLUMNS));
    },
  },
  {
    name: 'permissions revoke',
    summary: 'delete a permission record by its id (DELETE /permissions/:id)',
    args: [{ name: 'ID' }],
    async run(ctx) {
      const id = arg(ctx, 'ID');
      await (await ctx.session()).request('DELETE', `/permissions/${enc(id)}`);
      ctx.out.result({ revoked: id }, () => `permission ${id}: revoked\n`);
    },
  },
];
