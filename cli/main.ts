import { parseArgs } from 'node:util';
import { connect, ClientError, type Session } from '@nitrogen/client';
import { COMMANDS } from './commands/index.js';
import { GLOBAL_OPTIONS, commandHelp, usage, type Command, type Context, type OptionSpec, type Values } from './command.js';
import { readCredentials } from './credentials.js';
import { CliError, EXIT_CODES, exitCode } from './exit-codes.js';
import { Output } from './output.js';
import { apiUrl } from './server-url.js';

/** The command words of argv: the leading tokens that are not options (nor a global option's value). */
function commandWords(argv: string[]): { words: string[]; rest: string[] } {
  const words: string[] = [];
  const rest: string[] = [];
  let i = 0;
  for (; i < argv.length && words.length < 2; i++) {
    const token = argv[i]!;
    if (token === '--') break;
    if (token.startsWith('-')) {
      rest.push(token);
      const name = token.replace(/^--?/, '');
      if (!token.includes('=') && GLOBAL_OPTIONS[name]?.type === 'string' && i + 1 < argv.length) rest.push(argv[++i]!);
      continue;
    }
    const candidate = [...words, token].join(' ');
    if (!COMMANDS.some((c) => c.name === candidate || c.name.startsWith(candidate + ' '))) break;
    words.push(token);
  }
  return { words, rest: [...rest, ...argv.slice(i)] };
}

function groupHelp(prefix: string): string {
  const commands = COMMANDS.filter((c) => prefix === '' || c.name === prefix || c.name.startsWith(prefix + ' '));
  const width = Math.max(...commands.map((c) => c.name.length));
  const codes = Object.values(EXIT_CODES).map((e) => `  ${e.code}  ${e.meaning}`);
  return [
    `usage: nitrogen ${prefix ? prefix + ' ' : ''}COMMAND [options]      (nitrogen ${prefix ? prefix + ' ' : ''}COMMAND --help for each)`,
    '',
    'commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    ...(prefix ? [] : ['With no command, nitrogen serves (as `npm start` does).', '', 'exit codes:', ...codes, '']),
  ].join('\n');
}

/** Positionals by the command's argument names; too few or too many is a usage error. */
function namedArgs(command: Command, positionals: string[]): Record<string, string | string[] | undefined> {
  const specs = command.args ?? [];
  const named: Record<string, string | string[] | undefined> = {};
  const variadic = specs.at(-1)?.variadic === true;
  if (!variadic && positionals.length > specs.length) throw new CliError('usage', `unexpected argument "${positionals[specs.length]}"`);
  specs.forEach((spec, i) => {
    const value = spec.variadic ? positionals.slice(i) : positionals[i];
    if (!spec.optional && (value === undefined || (Array.isArray(value) && value.length === 0))) throw new CliError('usage', `missing ${spec.name}`);
    named[spec.name] = value;
  });
  return named;
}

/** The stored token no longer works: a new login fixes it. */
const RELOGIN = new Set(['NITROGEN_ERR_TOKEN_EXPIRED', 'NITROGEN_ERR_TOKEN_INVALID', 'NITROGEN_ERR_UNAUTHENTICATED']);

/** A client error as one line and an exit status: the server's code and message, or why it could not be reached. */
function explain(err: ClientError, api: string | undefined): CliError {
  const field = typeof err.details?.field === 'string' ? ` (field: ${err.details.field})` : '';
  const line = `${err.code}: ${err.message}${field}`;
  if (err.code === 'NITROGEN_CLIENT_BAD_OPTIONS') return new CliError('usage', line);
  if (err.code === 'NITROGEN_CLIENT_UNREACHABLE' || err.code === 'NITROGEN_CLIENT_TIMEOUT' || err.code === 'NITROGEN_CLIENT_PROTOCOL') return new CliError('unreachable', line);
  if (err.status === 401 || err.code === 'NITROGEN_ERR_PRINCIPAL_DISABLED') return new CliError('auth', `${line}${api && RELOGIN.has(err.code) ? `; log in again: nitrogen login ${api}` : ''}`);
  if (err.status === 404) return new CliError('notFound', line);
  return new CliError('refused', line);
}

/** Runs `nitrogen …argv` and resolves with the exit status, or null when the process goes on serving. */
export async function runCli(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number | null> {
  const output = new Output(argv.includes('--json'));
  const { words, rest } = commandWords(argv);
  const name = words.join(' ');
  const command = COMMANDS.find((c) => c.name === name);
  let api: string | undefined;
  let session: Session | undefined;
  try {
    if (!command) {
      if (rest.includes('--help') || rest.includes('-h') || argv[0] === 'help') {
        output.text(groupHelp(argv[0] === 'help' ? '' : name));
        return exitCode('ok');
      }
      const next = rest.find((t) => !t.startsWith('-'));
      const problem = next ? `unknown command "${[...words, next].join(' ')}"` : words.length ? `"${name}" needs a subcommand` : 'no command';
      throw new CliError('usage', problem, groupHelp(name));
    }
    const options: Record<string, OptionSpec> = { ...GLOBAL_OPTIONS, ...command.options };
    let parsed: { values: Values; positionals: string[] };
    try {
      parsed = parseArgs({ args: rest, options, allowPositionals: true, strict: true }) as typeof parsed;
    } catch (err) {
      throw new CliError('usage', (err as Error).message.split('\n')[0]!.replace(/\. To specify.*$/, ''), `usage: ${usage(command)}`);
    }
    if (parsed.values.help) {
      output.text(commandHelp(command));
      return exitCode('ok');
    }
    let args: Record<string, string | string[] | undefined>;
    try {
      args = namedArgs(command, parsed.positionals);
    } catch (err) {
      throw new CliError('usage', (err as Error).message, `usage: ${usage(command)}`);
    }
    const ctx: Context = {
      args,
      options: parsed.values,
      out: output,
      env,
      apiUrl: () => (api ??= resolveServer(parsed.values.url as string | undefined, env)),
      session: async () => (session ??= await openSession(ctx.apiUrl(), env)),
    };
    const outcome = await command.run(ctx);
    return outcome === 'serving' ? null : exitCode(outcome ?? 'ok');
  } catch (err) {
    const failure = err instanceof ClientError ? explain(err, api) : err;
    if (!(failure instanceof CliError)) throw err;
    output.note(`nitrogen: ${failure.message}`);
    if (failure.hint) output.note(failure.hint);
    return exitCode(failure.exit);
  } finally {
    await session?.close();
  }
}

/** `--url`, else `NITROGEN_URL`, else the server of the last login. */
function resolveServer(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  const given = flag ?? env.NITROGEN_URL;
  if (given) return apiUrl(given);
  const current = readCredentials(env).current;
  if (!current) throw new CliError('auth', 'not logged in: nitrogen login URL (or give --url / NITROGEN_URL)');
  return current;
}

/** A REST session on the stored token: no request is made until the command makes one. */
async function openSession(api: string, env: NodeJS.ProcessEnv): Promise<Session> {
  const login = readCredentials(env).servers[api];
  if (!login) throw new CliError('auth', `not logged in to ${api}: nitrogen login ${api}`);
  if (login.expiresAt && Date.parse(login.expiresAt) <= Date.now()) {
    throw new CliError('auth', `the login to ${api} as "${login.id}" expired at ${login.expiresAt}: log in again with nitrogen login ${api}`);
  }
  return connect({ url: api, id: login.id, accessToken: login.accessToken, transport: 'rest', mqtt: false });
}
