import { readFileSync } from 'node:fs';
import type { Context, OptionSpec } from '../command.js';
import { CliError } from '../exit-codes.js';

export const enc = encodeURIComponent;

/** A positional argument the table declared required. */
export const arg = (ctx: Context, name: string): string => ctx.args[name] as string;

/** A repeatable option, each value also split at commas: `--tag a --tag b` = `--tag a,b`. */
export function list(value: unknown): string[] {
  if (value === undefined) return [];
  // node:util parseArgs gives a string option as a string, or an array of them when repeatable.
  const values = (Array.isArray(value) ? value : [value]) as string[];
  return values
    .flatMap((v) => v.split(','))
    .map((v) => v.trim())
    .filter(Boolean);
}

export function positiveInt(value: unknown, option: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[1-9][0-9]{0,8}$/.test(value as string)) throw new CliError('usage', `--${option}: must be a positive integer`);
  return Number(value);
}

/** A JSON value given on the command line (`--body '{"speed":88}'`). */
export function jsonValue(value: string, option: string): unknown {
  try {
    return JSON.parse(value);
  } catch (err) {
    throw new CliError('usage', `--${option}: not valid JSON (${(err as Error).message}); quote it for the shell: --${option} '{"speed":88}'`);
  }
}

/** Query parameters from options, skipping absent ones; lists comma-joined as the API accepts them. */
export function query(params: Record<string, string | string[] | number | undefined>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || (Array.isArray(value) && value.length === 0)) continue;
    search.set(key, Array.isArray(value) ? value.join(',') : String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

export const PAGING: Record<string, OptionSpec> = {
  limit: { type: 'string', value: 'N', help: 'page size (the server caps it; default 100)' },
  cursor: { type: 'string', value: 'CURSOR', help: 'the page after the one that printed this cursor' },
  all: { type: 'boolean', help: 'every page, following the cursor to the end' },
};

/**
 * A paged list (`{items…, next}`): one page, or with `--all` every page joined. Without
 * `--all`, a further page is announced on stderr with the option that fetches it.
 */
export async function paged<T>(ctx: Context, path: string, key: string, params: Record<string, string | string[] | number | undefined>): Promise<{ items: T[]; next: string | null }> {
  const limit = positiveInt(ctx.options.limit, 'limit');
  const session = await ctx.session();
  let cursor = ctx.options.cursor as string | undefined;
  const items: T[] = [];
  for (;;) {
    const page = await session.request<Record<string, unknown> & { next: string | null }>('GET', path + query({ ...params, limit, cursor }));
    items.push(...(page[key] as T[]));
    if (!ctx.options.all || !page.next) return { items, next: page.next };
    cursor = page.next;
  }
}

export function announceNext(ctx: Context, next: string | null): void {
  if (next && !ctx.out.json) ctx.out.note(`more: add --cursor ${next} (or --all)`);
}

/** A file named on the command line (`what`: its option or argument), `-` for stdin. */
export function readText(file: string, what: string): string {
  try {
    return readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (err) {
    throw new CliError('usage', `${what}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}
