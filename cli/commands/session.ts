import { connect } from '@nitrogen/client';
import type { Command, Context } from '../command.js';
import { credentialsPath, readCredentials, writeCredentials } from '../credentials.js';
import { CliError } from '../exit-codes.js';
import { idFrom, secretFrom } from '../prompt.js';
import { record } from '../output.js';
import { apiUrl, rootUrl } from '../server-url.js';
import { showPrincipal, type Principal } from './principals.js';
import { arg, enc } from './common.js';

const CREDENTIALS = {
  id: { type: 'string', value: 'ID', help: 'the principal id (asked on the terminal when absent)' },
  'secret-file': { type: 'string', value: 'FILE', help: 'read the secret or password from FILE (such as data/admin.secret)' },
  'secret-stdin': { type: 'boolean', help: 'read the secret or password from stdin' },
} as const;

/** Authenticates with a secret through the client library and hands back its token. */
async function authenticate(api: string, id: string, secret: string): Promise<{ token: string; expiresAt: string | null }> {
  const session = await connect({ url: api, id, secret, transport: 'rest', mqtt: false });
  try {
    return await session.accessToken();
  } finally {
    await session.close();
  }
}

function serverOf(ctx: Context): string {
  return ctx.args.URL ? apiUrl(ctx.args.URL as string) : ctx.apiUrl();
}

/** Logging in, out, and what the server says of itself. */
export const sessionCommands: Command[] = [
  {
    name: 'login',
    summary: 'log in to a server once; its token is kept for the other commands',
    args: [{ name: 'URL' }],
    options: CREDENTIALS,
    help: [
      'URL is the server (http://127.0.0.1:3000; /api/v1 is added). The id and the secret or password are',
      'asked on the terminal (the secret without echo), or given with --id and --secret-file/--secret-stdin.',
      'The secret is never stored: the access token is, in $NITROGEN_CONFIG_DIR, else $XDG_CONFIG_HOME/nitrogen,',
      'else ~/.config/nitrogen (credentials.json, mode 0600, directory 0700). When the token expires',
      '(a day, by default), commands say so: log in again.',
    ].join('\n'),
    async run(ctx) {
      const api = apiUrl(arg(ctx, 'URL'));
      const id = await idFrom(ctx.options);
      const secret = await secretFrom(ctx.options);
      const { token, expiresAt } = await authenticate(api, id, secret);
      const file = readCredentials(ctx.env);
      file.servers[api] = { id, accessToken: token, expiresAt, loggedInAt: new Date().toISOString() };
      file.current = api;
      const path = writeCredentials(file, ctx.env);
      ctx.out.result({ url: api, id, expiresAt }, () => `logged in to ${api} as ${id}${expiresAt ? ` until ${expiresAt}` : ''}\n`);
      if (!ctx.out.json) ctx.out.note(`token kept in ${path}`);
    },
  },
  {
    name: 'logout',
    summary: "forget the token of a server (the last login's without URL)",
    args: [{ name: 'URL', optional: true }],
    async run(ctx) {
      const api = serverOf(ctx);
      const file = readCredentials(ctx.env);
      const had = api in file.servers;
      delete file.servers[api];
      if (file.current === api) file.current = Object.keys(file.servers)[0] ?? null;
      if (had) writeCredentials(file, ctx.env);
      ctx.out.result({ url: api, loggedOut: had }, () => (had ? `logged out of ${api}\n` : `not logged in to ${api}\n`));
    },
  },
  {
    name: 'whoami',
    summary: 'the server and principal of the stored login, as the server sees it (GET /principals/:id)',
    async run(ctx) {
      const api = ctx.apiUrl();
      const login = readCredentials(ctx.env).servers[api];
      const session = await ctx.session();
      const { principal } = await session.request<{ principal: Principal }>('GET', `/principals/${enc(session.id)}`);
      ctx.out.result({ url: api, principal, expiresAt: login?.expiresAt ?? null }, () => `server:    ${api}\n${showPrincipal(principal)}token until: ${login?.expiresAt ?? 'unknown'}\n`);
      if (!ctx.out.json) ctx.out.note(`credentials: ${credentialsPath(ctx.env)}`);
    },
  },
  {
    name: 'health',
    summary: "the server's liveness and readiness with each component (GET /health, GET /ready); exit 1 when not ready",
    help: 'Needs no login: --url, NITROGEN_URL, or the last login names the server.',
    async run(ctx) {
      // Outside the API base and without a token: plain fetch, not a session of the client library.
      const root = rootUrl(ctx.apiUrl());
      const get = async (path: string) => {
        let res: Response;
        try {
          res = await fetch(root + path, { signal: AbortSignal.timeout(10_000) });
        } catch (err) {
          const cause = (err as Error & { cause?: { code?: string; errors?: Array<{ code?: string }> } }).cause;
          throw new CliError('unreachable', `NITROGEN_CLIENT_UNREACHABLE: GET ${root}${path}: ${cause?.code ?? cause?.errors?.[0]?.code ?? (cause as Error | undefined)?.message ?? (err as Error).message}`);
        }
        try {
          return (await res.json()) as Record<string, unknown>;
        } catch {
          throw new CliError('unreachable', `NITROGEN_CLIENT_PROTOCOL: GET ${root}${path}: HTTP ${res.status}, not a Nitrogen answer`);
        }
      };
      const health = (await get('/health')) as { status: string; uptimeSeconds: number; pendingCommits: number };
      const ready = (await get('/ready')) as { status: string; ready: boolean; components: Record<string, { status: string; critical: boolean; since: string; reason?: string }> };
      ctx.out.result(
        { health, ready },
        () =>
          record([
            ['server', root],
            ['status', ready.status],
            ['ready', ready.ready ? 'yes' : 'no'],
            ['uptime', `${health.uptimeSeconds} s`],
            ['pending commits', health.pendingCommits],
          ]) +
          Object.entries(ready.components ?? {})
            .map(([name, c]) => `  ${name.padEnd(24)} ${c.status.padEnd(9)} since ${c.since}${c.reason ? `  ${c.reason}` : ''}`)
            .join('\n') +
          '\n',
      );
      return ready.ready ? 'ok' : 'refused';
    },
  },
  {
    name: 'tokens issue',
    summary: 'an access token for a principal from its secret, printed, not stored (POST /principals/auth)',
    options: CREDENTIALS,
    help: 'For a script or a device that wants a token; the secret is read as by login.',
    async run(ctx) {
      const api = ctx.apiUrl();
      const id = await idFrom(ctx.options);
      const secret = await secretFrom(ctx.options);
      const { token, expiresAt } = await authenticate(api, id, secret);
      ctx.out.result({ id, accessToken: token, expiresAt }, () => `${token}\n`);
    },
  },
  {
    name: 'tokens impersonate',
    summary: 'an access token for a principal you hold impersonate on, printed (POST /principals/:id/impersonate)',
    args: [{ name: 'ID' }],
    help: 'The token names you as its impersonator and ends with your rights (an hour by default).',
    async run(ctx) {
      const answer = await (await ctx.session()).request<{ accessToken: string; expiresAt: string; principal: Principal }>('POST', `/principals/${enc(arg(ctx, 'ID'))}/impersonate`);
      ctx.out.result({ id: answer.principal.id, accessToken: answer.accessToken, expiresAt: answer.expiresAt }, () => `${answer.accessToken}\n`);
    },
  },
];
