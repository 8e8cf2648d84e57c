import { chmodSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { CliError } from './exit-codes.js';

/** What `nitrogen login` keeps for one server: the token, never the secret. */
interface Login {
  id: string;
  accessToken: string;
  /** ISO time; null when the token names no expiry (the server always sets one). */
  expiresAt: string | null;
  loggedInAt: string;
}

/** The file's shape: a login per server (its API base URL) and the one used when no `--url` says. */
export interface CredentialsFile {
  version: 1;
  current: string | null;
  servers: Record<string, Login>;
}

/**
 * Where the token lives: `$NITROGEN_CONFIG_DIR` (tests), else `$XDG_CONFIG_HOME/nitrogen`, else
 * `~/.config/nitrogen` (the XDG Base Directory default).
 */
function configDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.NITROGEN_CONFIG_DIR) return env.NITROGEN_CONFIG_DIR;
  const base = env.XDG_CONFIG_HOME && env.XDG_CONFIG_HOME.startsWith('/') ? env.XDG_CONFIG_HOME : join(homedir(), '.config');
  return join(base, 'nitrogen');
}

export const credentialsPath = (env: NodeJS.ProcessEnv = process.env): string => join(configDir(env), 'credentials.json');

export function readCredentials(env: NodeJS.ProcessEnv = process.env): CredentialsFile {
  const path = credentialsPath(env);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, current: null, servers: {} };
    throw new CliError('auth', `cannot read ${path}: ${(err as Error).message}`);
  }
  narrow(path);
  try {
    const parsed = JSON.parse(text) as CredentialsFile;
    if (parsed?.version === 1 && typeof parsed.servers === 'object' && parsed.servers !== null) return parsed;
  } catch {
    // said below
  }
  throw new CliError('auth', `${path} is not a credentials file of this version; delete it and log in again`);
}

/**
 * Writes the file so that no other user can read it at any moment: the directory is made (or
 * narrowed to) 0700, the file written as a new 0600 file and renamed over the old one, so a
 * crash mid-write leaves the old file whole.
 */
export function writeCredentials(file: CredentialsFile, env: NodeJS.ProcessEnv = process.env): string {
  const dir = configDir(env);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const path = credentialsPath(env);
  const temp = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(temp, JSON.stringify(file, null, 2) + '\n', { mode: 0o600, flag: 'wx' });
    renameSync(temp, path);
  } catch (err) {
    rmSync(temp, { force: true });
    throw err;
  }
  return path;
}

/**
 * A credentials file others can read (copied, or its mode changed) is narrowed back to 0600,
 * saying so: the tokens in it act as their principals until they expire.
 */
function narrow(path: string): void {
  const mode = statSync(path).mode & 0o777;
  if ((mode & 0o077) === 0) return;
  chmodSync(path, 0o600);
  process.stderr.write(`nitrogen: ${path} was readable by others (mode ${mode.toString(8)}); it is 0600 now. Tokens in it may have been read: log in again to replace them\n`);
}
