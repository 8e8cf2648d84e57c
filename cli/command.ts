import type { Session } from '@nitrogen/client';
import type { ExitName } from './exit-codes.js';
import type { Output } from './output.js';

/** An option of a command, as `node:util` parseArgs takes it, with what `--help` says of it. */
export interface OptionSpec {
  type: 'string' | 'boolean';
  multiple?: boolean;
  short?: string;
  /** The value's placeholder in the usage line: `--limit N`. */
  value?: string;
  help: string;
}

/** A positional argument; `optional` ones come last, a `variadic` one takes the rest. */
interface ArgSpec {
  name: string;
  optional?: boolean;
  variadic?: boolean;
}

export type Values = Record<string, string | boolean | string[] | undefined>;

export interface Context {
  /** Positional arguments by name (a variadic one as an array). */
  args: Record<string, string | string[] | undefined>;
  options: Values;
  out: Output;
  env: NodeJS.ProcessEnv;
  /** The REST base URL the command talks to: `--url`, `NITROGEN_URL`, or the last login. */
  apiUrl(): string;
  /** A session on the stored token of `apiUrl()`; closed when the command ends. */
  session(): Promise<Session>;
}

/**
 * One command: what the dispatcher, `--help` and docs/cli.md know of it. `name` is its words
 * (`principals add`); the handler returns how to exit (`ok` when it returns nothing), or
 * `serving` when the process goes on (the server).
 */
export interface Command {
  name: string;
  summary: string;
  /** More lines for `--help`: what it calls, what it prints. */
  help?: string;
  args?: ArgSpec[];
  options?: Record<string, OptionSpec>;
  run(ctx: Context): Promise<ExitName | 'serving' | void>;
}

/** The options every command takes. */
export const GLOBAL_OPTIONS: Record<string, OptionSpec> = {
  json: { type: 'boolean', help: 'print JSON for scripts (the shapes of docs/cli.md) instead of tables' },
  url: { type: 'string', value: 'URL', help: 'the server, instead of NITROGEN_URL or the last login (http://host:3000)' },
  help: { type: 'boolean', short: 'h', help: 'show this help' },
};

export function usage(command: Command): string {
  const args = (command.args ?? []).map((a) => (a.optional ? `[${a.name}${a.variadic ? '…' : ''}]` : `${a.name}${a.variadic ? '…' : ''}`));
  return ['nitrogen', command.name, ...args, ...(Object.keys(command.options ?? {}).length ? ['[options]'] : [])].join(' ');
}

function optionLines(options: Record<string, OptionSpec>): string[] {
  const rows = Object.entries(options).map(([name, o]) => [`${o.short ? `-${o.short}, ` : ''}--${name}${o.value ? ` ${o.value}` : ''}${o.multiple ? ' (repeatable)' : ''}`, o.help] as const);
  const width = Math.max(...rows.map(([left]) => left.length));
  return rows.map(([left, help]) => `  ${left.padEnd(width)}  ${help}`);
}

export function commandHelp(command: Command): string {
  return [
    `usage: ${usage(command)}`,
    '',
    command.summary,
    ...(command.help ? ['', command.help] : []),
    ...(Object.keys(command.options ?? {}).length ? ['', 'options:', ...optionLines(command.options!)] : []),
    '',
    'global options:',
    ...optionLines(GLOBAL_OPTIONS),
    '',
  ].join('\n');
}
