import { CliError } from './exit-codes.js';

const BASE = '/api/v1';

/**
 * The REST base URL of a server as the user names it: `http://host:3000` and
 * `http://host:3000/api/v1` are the same server (the path a proxy adds is kept).
 */
export function apiUrl(input: string): string {
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    throw new CliError('usage', `"${input}" is not a URL; give the server's address, such as http://127.0.0.1:3000`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new CliError('usage', `"${input}": only http:// and https:// servers are spoken to`);
  if (url.username || url.password) throw new CliError('usage', `"${input}": credentials do not go in the URL; nitrogen login asks for them`);
  const path = url.pathname.replace(/\/+$/, '');
  return `${url.origin}${path.endsWith(BASE) ? path : path + BASE}`;
}

/** Where `/health` and `/ready` are: the root the API base hangs from. */
export function rootUrl(api: string): string {
  return api.slice(0, -BASE.length);
}
