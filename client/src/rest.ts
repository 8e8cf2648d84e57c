import { ClientError } from './errors.js';
import type { Tokens } from './tokens.js';

export interface RestOptions {
  /** The REST base URL, e.g. `http://127.0.0.1:3000/api/v1`. */
  url: string;
  requestTimeoutMs: number;
}

export interface CallOptions {
  /** Send the session's token (default true). */
  auth?: boolean;
  signal?: AbortSignal;
  /** Give up after this long instead of `requestTimeoutMs` (SSE streams have none: 0). */
  timeoutMs?: number;
  /** Sent as they are: an `ApiKey` authorization, say, in place of the session's token. */
  headers?: Record<string, string>;
}

/** Codes with which the server refuses a token that a new one may fix. */
const RENEWABLE = new Set(['NITROGEN_ERR_TOKEN_EXPIRED', 'NITROGEN_ERR_TOKEN_INVALID']);

/** fetch's failure as a client error: unreachable, or timed out. */
function networkError(url: string, err: unknown, timeoutMs: number): ClientError {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError') return new ClientError('NITROGEN_CLIENT_TIMEOUT', `${url}: no answer within ${timeoutMs} ms`, { limit: 'requestTimeoutMs' }, undefined, { cause: err });
  if (e.name === 'AbortError') return new ClientError('NITROGEN_CLIENT_CLOSED', `${url}: cancelled`, undefined, undefined, { cause: err });
  return new ClientError('NITROGEN_CLIENT_UNREACHABLE', `${url}: ${e.cause?.code ?? e.cause?.message ?? e.message}`, undefined, undefined, { cause: err });
}

/** A server's error answer as a client error with its code, status and details (docs/errors.md). */
async function answerError(res: Response, url: string): Promise<ClientError> {
  let body: { error?: { code?: unknown; message?: unknown; details?: Record<string, unknown> } } | undefined;
  try {
    body = (await res.json()) as typeof body;
  } catch {
    // not JSON: said below
  }
  const retryAfter = Number(res.headers.get('retry-after'));
  const extra = Number.isFinite(retryAfter) && retryAfter > 0 ? { retryAfter } : {};
  const error = body?.error;
  if (typeof error?.code === 'string' && error.code.startsWith('NITROGEN_ERR_')) {
    // eslint-disable-next-line @typescript-eslint/no-base-to-string -- the server's JSON, shown as it comes
    return new ClientError(error.code as `NITROGEN_ERR_${string}`, String(error.message ?? error.code), { ...error.details, ...extra }, res.status);
  }
  return new ClientError('NITROGEN_CLIENT_PROTOCOL', `${url}: HTTP ${res.status} without a Nitrogen error body`, extra, res.status);
}

/**
 * The REST API with the session's token: JSON in and out, errors as `ClientError`s with the
 * server's codes, one renewal and retry when the server refuses the token as expired or invalid.
 */
export class Rest {
  constructor(
    private readonly options: RestOptions,
    private readonly tokens: Tokens | null,
  ) {}

  async call<T>(method: string, path: string, body?: unknown, options: CallOptions = {}): Promise<T> {
    const res = await this.send(method, path, body === undefined ? undefined : JSON.stringify(body), options);
    if (res.status === 204) return undefined as T;
    try {
      return (await res.json()) as T;
    } catch (err) {
      throw new ClientError('NITROGEN_CLIENT_PROTOCOL', `${method} ${path}: the answer is not JSON`, undefined, res.status, { cause: err });
    }
  }

  /** A request whose answer only matters by its status: the body is read (so the connection is reused) and dropped. */
  async post(path: string, json: string, options: CallOptions = {}): Promise<void> {
    await (await this.send('POST', path, json, options)).arrayBuffer();
  }

  /** The response of a successful request (2xx), unread; anything else as an error. */
  async send(method: string, path: string, json: string | undefined, options: CallOptions = {}, retried = false): Promise<Response> {
    const url = this.options.url + path;
    const headers: Record<string, string> = { ...options.headers };
    if (json !== undefined) headers['content-type'] = 'application/json';
    let token: string | undefined;
    if (options.auth !== false && this.tokens) {
      token = await this.tokens.token();
      headers.authorization = `Bearer ${token}`;
    }
    const timeoutMs = options.timeoutMs ?? this.options.requestTimeoutMs;
    const signals = [options.signal, timeoutMs > 0 ? AbortSignal.timeout(timeoutMs) : undefined].filter((s): s is AbortSignal => s !== undefined);
    let res: Response;
    try {
      res = await fetch(url, { method, headers, body: json, signal: signals.length > 1 ? AbortSignal.any(signals) : signals[0] });
    } catch (err) {
      throw networkError(`${method} ${url}`, err, timeoutMs);
    }
    if (res.ok) return res;
    const error = await answerError(res, `${method} ${url}`);
    if (token && !retried && res.status === 401 && RENEWABLE.has(error.code)) {
      this.tokens!.refused(token);
      return this.send(method, path, json, options, true);
    }
    throw error;
  }
}
