import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { defaultCatalog } from '../catalog.js';
import { readConfigInput } from '../core/config.js';
import { isNitrogenError } from '../core/errors.js';
import { checkConfig } from '../core/preflight.js';
import { CliError } from './exit-codes.js';
import { locate, type Position } from './json-position.js';

export interface ConfigProblem {
  message: string;
  /** The configuration path the problem names (`sinks.0.options.url`), when it names one. */
  path?: string;
  line?: number;
  column?: number;
}

/**
 * `nitrogen config check FILE`: the check `serve` makes before it writes anything
 * (core/preflight.ts, every plugin resolved and its options checked), on FILE with this
 * environment's overrides (NITROGEN_REST_PORT…), without starting. Each problem is placed in the
 * file when it names a path there.
 */
export async function checkConfigFile(file: string, env: NodeJS.ProcessEnv): Promise<{ file: string; ok: boolean; problems: ConfigProblem[] }> {
  const path = resolve(file);
  if (!existsSync(path)) throw new CliError('usage', `config check: no file at ${path}`);
  const text = readFileSync(path, 'utf8');
  try {
    const { input, source, problems } = readConfigInput({ ...env, NITROGEN_CONFIG: path });
    await checkConfig(input, defaultCatalog, source, problems);
    return { file: path, ok: true, problems: [] };
  } catch (err) {
    if (!isNitrogenError(err)) throw err;
    const details = (err.details ?? {}) as { problems?: unknown; line?: number; column?: number };
    // Not JSON at all: the parser's own line and column.
    if (typeof details.line === 'number') return { file: path, ok: false, problems: [{ message: err.message.split('\n')[0]!.replace(/^.*?:\d+:\d+: /, ''), line: details.line, column: details.column }] };
    const messages = Array.isArray(details.problems) ? (details.problems as string[]) : [err.message];
    return { file: path, ok: false, problems: messages.map((message) => placed(message, text)) };
  }
}

function placed(message: string, text: string): ConfigProblem {
  const path = /^([A-Za-z0-9_$.-]+|\(root\)): /.exec(message)?.[1];
  if (!path) return { message };
  const at: Position | undefined = locate(text, path === '(root)' ? [] : path.split('.'));
  return { message, path, ...(at ?? {}) };
}
