import type { Command } from '../command.js';
import { table, type Column } from '../output.js';
import { showPrincipal, type Principal } from './principals.js';
import { arg, enc, list, query } from './common.js';

interface ApiKey {
  id: string;
  owner: string;
  name?: string;
  capabilities: string[];
  grant: string[];
  deviceTags: string[];
  claimable: boolean;
  createdAt: string;
  expiresAt?: string;
}

const COLUMNS: Column<ApiKey>[] = [
  { header: 'id', value: (k) => k.id },
  { header: 'owner', value: (k) => k.owner },
  { header: 'name', value: (k) => k.name },
  { header: 'grant', value: (k) => k.grant },
  { header: 'device tags', value: (k) => k.deviceTags },
  { header: 'claimable', value: (k) => (k.claimable ? 'yes' : 'no') },
  { header: 'expires', value: (k) => k.expiresAt },
];

/** API keys and claims (docs/onboarding.md). */
export const onboardingCommands: Command[] = [
  {
    name: 'api-keys create',
    summary: 'an API key devices register themselves with; the key is shown this once (POST /api-keys)',
    options: {
      name: { type: 'string', value: 'NAME', help: 'what it is for ("line 3")' },
      owner: { type: 'string', value: 'ID', help: 'the principal owning it (default: you)' },
      grant: { type: 'string', multiple: true, value: 'ACTION', help: 'what the owner gets on each device registered with it (default admin)' },
      'device-tag': { type: 'string', multiple: true, value: 'TAG', help: 'a tag each such device gets' },
      'not-claimable': { type: 'boolean', help: 'its devices get no claim code' },
      expires: { type: 'string', value: 'TIME', help: 'after this time the key registers nothing' },
    },
    async run(ctx) {
      const o = ctx.options;
      const body: Record<string, unknown> = {};
      if (o.name) body.name = o.name;
      if (o.owner) body.owner = o.owner;
      if (o.grant) body.grant = list(o.grant);
      if (o['device-tag']) body.deviceTags = list(o['device-tag']);
      if (o['not-claimable']) body.claimable = false;
      if (o.expires) body.expiresAt = o.expires;
      const answer = await (await ctx.session()).request<{ apiKey: ApiKey; key: string }>('POST', '/api-keys', body);
      ctx.out.result(answer, () => table([answer.apiKey], COLUMNS) + `key: ${answer.key}\n(shown only this once: keep it now)\n`);
    },
  },
  {
    name: 'api-keys list',
    summary: 'your API keys (or those of --owner), never their secrets (GET /api-keys)',
    options: { owner: { type: 'string', value: 'ID', help: "another principal's keys (needs admin on it)" } },
    async run(ctx) {
      const answer = await (await ctx.session()).request<{ apiKeys: ApiKey[] }>('GET', `/api-keys${query({ owner: ctx.options.owner as string | undefined })}`);
      ctx.out.result(answer, () => table(answer.apiKeys, COLUMNS));
    },
  },
  {
    name: 'api-keys revoke',
    summary: 'revoke an API key: nothing registers with it any more (DELETE /api-keys/:id)',
    args: [{ name: 'ID' }],
    async run(ctx) {
      const id = arg(ctx, 'ID');
      await (await ctx.session()).request('DELETE', `/api-keys/${enc(id)}`);
      ctx.out.result({ revoked: id }, () => `API key ${id}: revoked\n`);
    },
  },
  {
    name: 'claim',
    summary: 'claim a device by the code it shows: you get admin on it (POST /claims)',
    args: [{ name: 'CODE' }],
    help: 'The code is read loosely: any case, with or without the dash (7KQ2M-XW4PB).',
    async run(ctx) {
      const answer = await (await ctx.session()).request<{ principal: Principal }>('POST', '/claims', { code: arg(ctx, 'CODE') });
      ctx.out.result(answer, () => `claimed:\n${showPrincipal(answer.principal)}`);
    },
  },
];
