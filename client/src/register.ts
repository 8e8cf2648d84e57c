import { badOption } from './errors.js';
import { Rest } from './rest.js';

export interface RegisterOptions {
  /** The REST base URL, e.g. `http://127.0.0.1:3000/api/v1`. */
  url: string;
  /** An API key with the `register` capability (docs/onboarding.md, "API keys"). */
  apiKey: string;
  /** The device's id (default: one the server makes, `device-<16 hex digits>`). */
  id?: string;
  name?: string;
  tags?: string[];
  requestTimeoutMs?: number;
}

/** What the server answers a registration: the device's credentials, shown this once. */
export interface Registration {
  id: string;
  secret: string;
  /** For a person to claim the device with (a claimable key), until `expiresAt`. */
  claimCode: { code: string; expiresAt: string } | null;
}

/**
 * Registers a device with an API key (`POST /devices/register`, no token): the way a device or a
 * factory line gets its credentials. The secret is given once: keep it (on Node,
 * `registerOnce` keeps it in a file). A refused key or a registration over the server's rate
 * limit rejects with the server's code (`NITROGEN_ERR_BAD_CREDENTIALS`, `NITROGEN_ERR_RATE_LIMITED`
 * with `details.retryAfter`).
 */
export async function register(options: RegisterOptions): Promise<Registration> {
  if (typeof options?.url !== 'string' || !/^https?:\/\//.test(options.url)) throw badOption('url', 'an http:// or https:// URL');
  if (typeof options.apiKey !== 'string' || options.apiKey.length === 0) throw badOption('apiKey', 'the API key, a non-empty string');
  const rest = new Rest({ url: options.url.replace(/\/+$/, ''), requestTimeoutMs: options.requestTimeoutMs ?? 30_000 }, null);
  const body = { ...(options.id !== undefined ? { id: options.id } : {}), ...(options.name !== undefined ? { name: options.name } : {}), ...(options.tags !== undefined ? { tags: options.tags } : {}) };
  const answer = await rest.call<{ principal: { id: string }; secret: string; claimCode?: { code: string; expiresAt: string } | null }>('POST', '/devices/register', body, {
    auth: false,
    headers: { authorization: `ApiKey ${options.apiKey}` },
  });
  return { id: answer.principal.id, secret: answer.secret, claimCode: answer.claimCode ?? null };
}
