import { ClientError, type Session } from '@nitrogen/client';
import type { Command, Context } from '../command.js';
import { CliError } from '../exit-codes.js';
import { record, table, type Column } from '../output.js';
import { parseCsv } from '../csv.js';
import { passwordFrom } from '../prompt.js';
import { PAGING, announceNext, arg, enc, list, paged, readText } from './common.js';

export interface Principal {
  id: string;
  type: string;
  name?: string;
  tags?: string[];
  enabled: boolean;
  createdAt: string;
  lastSeenAt?: string;
}

const COLUMNS: Column<Principal>[] = [
  { header: 'id', value: (p) => p.id },
  { header: 'type', value: (p) => p.type },
  { header: 'name', value: (p) => p.name },
  { header: 'tags', value: (p) => p.tags },
  { header: 'enabled', value: (p) => (p.enabled ? 'yes' : 'no') },
  { header: 'last seen', value: (p) => p.lastSeenAt },
];

export const showPrincipal = (p: Principal): string =>
  record([
    ['id', p.id],
    ['type', p.type],
    ['name', p.name],
    ['tags', p.tags],
    ['enabled', p.enabled ? 'yes' : 'no'],
    ['created', p.createdAt],
    ['last seen', p.lastSeenAt],
  ]);

const TYPES = ['device', 'app', 'user'];
type Registration = { type: string; id?: string; name?: string; tags?: string[] };
type Registered = { principal: Principal; secret?: string };

function checkType(type: string): string {
  if (!TYPES.includes(type)) throw new CliError('usage', `TYPE must be one of ${TYPES.join(', ')}, not "${type}"`);
  return type;
}

async function setEnabled(ctx: Context, enabled: boolean): Promise<void> {
  const session = await ctx.session();
  const answer = await session.request<{ principal: Principal }>('PATCH', `/principals/${enc(arg(ctx, 'ID'))}`, { enabled });
  ctx.out.result(answer, () => `${answer.principal.id}: ${enabled ? 'enabled' : 'disabled (its tokens are refused and its sessions closed)'}\n`);
}

/** One CSV row's outcome in `principals import`. */
interface ImportRow {
  /** The line of the file the row starts on (the header is line 1). */
  row: number;
  id: string | null;
  ok: boolean;
  secret?: string;
  error?: { code: string; message: string; field?: string };
}

const BATCH = 100;

/** An error no row caused: the server away, busy, or refusing the caller itself. Sending more rows would not help. */
const stopsImport = (err: unknown): boolean => !(err instanceof ClientError) || err.status === undefined || err.status === 401 || err.status === 403 || err.retryable;

/**
 * Registers the rows in batches (the API takes a batch all or nothing); a refused batch is
 * registered again row by row, so each row gets its own verdict and the good ones go in. An
 * error no row caused stops the import, and the rows not sent say so: the secrets of those
 * registered before it are printed all the same (they are shown only this once). When nothing
 * was registered, that error is the command's.
 */
async function importRows(session: Session, rows: Array<{ row: number; registration: Registration }>): Promise<ImportRow[]> {
  const results: ImportRow[] = [];
  const register = async (batch: typeof rows) => (await session.register(batch.map((r) => r.registration as Parameters<Session['register']>[0][number]))) as Registered[];
  const stop = (err: unknown, from: number): ImportRow[] => {
    if (!results.some((r) => r.ok)) throw err;
    const e = err as ClientError;
    const error = { code: e.code ?? 'NITROGEN_CLIENT_PROTOCOL', message: `not sent: ${e.message}` };
    return [
      ...results,
      ...rows
        .slice(from)
        .filter((r) => !results.some((done) => done.row === r.row))
        .map(({ row, registration }) => ({ row, id: registration.id ?? null, ok: false, error })),
    ];
  };
  for (let start = 0; start < rows.length; start += BATCH) {
    const batch = rows.slice(start, start + BATCH);
    try {
      (await register(batch)).forEach((r, i) => results.push(ok(batch[i]!.row, r)));
      continue;
    } catch (err) {
      if (stopsImport(err)) return stop(err, start);
    }
    for (const entry of batch) {
      try {
        results.push(ok(entry.row, (await register([entry]))[0]!));
      } catch (err) {
        if (stopsImport(err)) return stop(err, start);
        const e = err as ClientError;
        const field = typeof e.details?.field === 'string' ? e.details.field.replace(/^\[0\]\.?/, '') : undefined;
        results.push({ row: entry.row, id: entry.registration.id ?? null, ok: false, error: { code: e.code, message: e.message.replace(/^\[0\]\.?/, ''), ...(field ? { field } : {}) } });
      }
    }
  }
  return results;
}

const ok = (row: number, r: Registered): ImportRow => ({ row, id: r.principal.id, ok: true, ...(r.secret ? { secret: r.secret } : {}) });

export const principalCommands: Command[] = [
  {
    name: 'principals add',
    summary: 'register a device, app or user (POST /principals); its secret is shown this once',
    args: [{ name: 'TYPE' }, { name: 'ID', optional: true }],
    options: {
      name: { type: 'string', value: 'NAME', help: 'a display name' },
      tag: { type: 'string', multiple: true, value: 'TAG', help: 'a tag (repeat, or comma-separated)' },
    },
    help: 'TYPE is device, app or user; without ID the server makes one ({type}-{16 hex digits}).\nA user gets a server-made secret; principals set-password gives it a password.',
    async run(ctx) {
      const registration: Registration = { type: checkType(arg(ctx, 'TYPE')) };
      if (ctx.args.ID) registration.id = arg(ctx, 'ID');
      if (ctx.options.name) registration.name = ctx.options.name as string;
      const tags = list(ctx.options.tag);
      if (tags.length) registration.tags = tags;
      const session = await ctx.session();
      const [done] = (await session.register([registration as Parameters<Session['register']>[0][number]])) as Registered[];
      ctx.out.result(done, () => showPrincipal(done!.principal) + (done!.secret ? `secret:    ${done!.secret}\n(shown only this once: keep it now)\n` : ''));
    },
  },
  {
    name: 'principals import',
    summary: 'register principals from a CSV file, with a verdict per row',
    args: [{ name: 'FILE' }],
    help: [
      'FILE (or - for stdin) is CSV (RFC 4180) with a header row naming its columns: type (required),',
      'id, name, tags (separated by ";" or spaces). Rows go in batches; when the server refuses a batch,',
      'its rows are sent one by one, so every good row is registered and every bad one says why.',
      'Prints each row (by the line it is on): its id, and the secret (shown only this once) or the error. Exit 1 if a row failed.',
    ].join('\n'),
    async run(ctx) {
      const file = arg(ctx, 'FILE');
      const { header, rows } = parseCsv(readText(file, 'FILE'));
      const unknown = header.filter((h) => !['type', 'id', 'name', 'tags'].includes(h));
      if (!header.includes('type') || unknown.length) throw new CliError('usage', `${file}: the header row must name the columns type, and any of id, name, tags${unknown.length ? ` (not ${unknown.join(', ')})` : ''}`);
      const local: ImportRow[] = [];
      const valid: Array<{ row: number; registration: Registration }> = [];
      rows.forEach(({ line: row, cells }) => {
        const at = (name: string) => cells[header.indexOf(name)]?.trim() || undefined;
        const type = at('type');
        if (!type || !TYPES.includes(type)) {
          local.push({ row, id: at('id') ?? null, ok: false, error: { code: 'NITROGEN_ERR_VALIDATION', message: `type: must be one of ${TYPES.join(', ')}`, field: 'type' } });
          return;
        }
        const registration: Registration = { type };
        for (const key of ['id', 'name'] as const) if (at(key)) registration[key] = at(key);
        const tags = (at('tags') ?? '').split(/[;\s]+/).filter(Boolean);
        if (tags.length) registration.tags = tags;
        valid.push({ row, registration });
      });
      const results = [...local, ...(valid.length ? await importRows(await ctx.session(), valid) : [])].sort((a, b) => a.row - b.row);
      const failed = results.filter((r) => !r.ok).length;
      ctx.out.result(
        { rows: results, registered: results.length - failed, failed },
        () =>
          table(results, [
            { header: 'row', value: (r) => r.row },
            { header: 'id', value: (r) => r.id },
            { header: 'result', value: (r) => (r.ok ? 'registered' : r.error!.code) },
            { header: 'secret or error', value: (r) => (r.ok ? r.secret : r.error!.message) },
          ]) + `${results.length - failed} registered, ${failed} failed${results.some((r) => r.secret) ? ' (secrets are shown only this once)' : ''}\n`,
      );
      return failed > 0 ? 'refused' : 'ok';
    },
  },
  {
    name: 'principals list',
    summary: 'list the principals you may view, by id (GET /principals)',
    options: {
      type: { type: 'string', value: 'TYPE', help: 'device, app or user' },
      tag: { type: 'string', value: 'TAG', help: 'only those holding this tag' },
      ...PAGING,
    },
    async run(ctx) {
      const { items, next } = await paged<Principal>(ctx, '/principals', 'principals', { type: ctx.options.type as string, tag: ctx.options.tag as string });
      ctx.out.result({ principals: items, next }, () => table(items, COLUMNS));
      announceNext(ctx, next);
    },
  },
  {
    name: 'principals show',
    summary: 'one principal (GET /principals/:id)',
    args: [{ name: 'ID' }],
    async run(ctx) {
      const answer = await (await ctx.session()).request<{ principal: Principal }>('GET', `/principals/${enc(arg(ctx, 'ID'))}`);
      ctx.out.result(answer, () => showPrincipal(answer.principal));
    },
  },
  {
    name: 'principals state',
    summary: 'presence, latest message of each type and twin of a principal (GET /principals/:id/state)',
    args: [{ name: 'ID' }],
    async run(ctx) {
      const answer = await (
        await ctx.session()
      ).request<{ principal: Principal; presence: { connected: boolean; since: string; transport: string } | null; latest: Record<string, { ts: string; body: unknown }>; twin: unknown }>('GET', `/principals/${enc(arg(ctx, 'ID'))}/state`);
      ctx.out.result(answer, () =>
        record([
          ['id', answer.principal.id],
          ['presence', answer.presence ? `${answer.presence.connected ? 'connected' : 'disconnected'} since ${answer.presence.since} (${answer.presence.transport})` : 'never connected'],
          ...Object.entries(answer.latest).map(([type, m]): [string, unknown] => [`latest ${type}`, `${m.ts} ${JSON.stringify(m.body)}`]),
          ['twin', answer.twin],
        ]),
      );
    },
  },
  {
    name: 'principals disable',
    summary: 'disable a principal: its tokens are refused, its sessions closed (PATCH /principals/:id)',
    args: [{ name: 'ID' }],
    run: (ctx) => setEnabled(ctx, false),
  },
  {
    name: 'principals enable',
    summary: 'enable a disabled principal again (PATCH /principals/:id)',
    args: [{ name: 'ID' }],
    run: (ctx) => setEnabled(ctx, true),
  },
  {
    name: 'principals set-password',
    summary: "set a user's password; its tokens and sessions end (PUT /principals/:id/password)",
    args: [{ name: 'ID' }],
    options: {
      'password-file': { type: 'string', value: 'FILE', help: 'read the password from FILE' },
      'password-stdin': { type: 'boolean', help: 'read the password from stdin' },
    },
    help: 'At least 12 characters. Asked twice on the terminal without echo unless a file or stdin gives it;\nnever on the command line. A user may set its own; anyone else needs admin on it.',
    async run(ctx) {
      const password = await passwordFrom(ctx.options);
      const id = arg(ctx, 'ID');
      await (await ctx.session()).request('PUT', `/principals/${enc(id)}/password`, { password });
      ctx.out.result({ id, passwordSet: true }, () => `${id}: password set (its earlier tokens no longer work)\n`);
    },
  },
  {
    name: 'principals rotate-secret',
    summary: 'replace the secret with a new server-made one, shown this once (POST /principals/:id/secret)',
    args: [{ name: 'ID' }],
    options: { overlap: { type: 'string', value: 'DURATION', help: 'keep the old secret valid this long too (1h, 7d), so devices move without a disconnect' } },
    help: "Without --overlap the old secret and its tokens stop working at once and the principal's sessions are closed.",
    async run(ctx) {
      const overlap = ctx.options.overlap as string | undefined;
      const answer = await (await ctx.session()).request<{ principal: Principal; secret: string }>('POST', `/principals/${enc(arg(ctx, 'ID'))}/secret${overlap ? `?overlap=${enc(overlap)}` : ''}`);
      ctx.out.result(answer, () => `${answer.principal.id}: new secret ${answer.secret}\n(shown only this once: keep it now)\n`);
    },
  },
  {
    name: 'principals delete',
    summary: 'delete a principal and the permission records issued to or for it (DELETE /principals/:id)',
    args: [{ name: 'ID' }],
    help: 'Its stored messages stay. Its tokens stop working and its sessions are closed.',
    async run(ctx) {
      const id = arg(ctx, 'ID');
      await (await ctx.session()).request('DELETE', `/principals/${enc(id)}`);
      ctx.out.result({ deleted: id }, () => `${id}: deleted\n`);
    },
  },
  {
    name: 'principals claim-code',
    summary: 'a new claim code for a device, replacing its old one (POST /principals/:id/claim-code)',
    args: [{ name: 'ID' }],
    async run(ctx) {
      const answer = await (await ctx.session()).request<{ code: string; expiresAt: string }>('POST', `/principals/${enc(arg(ctx, 'ID'))}/claim-code`);
      ctx.out.result(answer, () => `claim code ${answer.code}, until ${answer.expiresAt}\n`);
    },
  },
];
