import { connect, type Session as ClientSession } from '@nitrogen/client/browser';

const API = '/api/v1';

/** An API error as the server answers it (docs/errors.md), or a network failure. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface Principal {
  id: string;
  type: 'device' | 'app' | 'user';
  name?: string;
  tags: string[];
  createdAt: string;
  lastSeenAt?: string;
  enabled: boolean;
  presence?: Presence | null;
}

export interface Presence {
  connected: boolean;
  since: string;
  address?: string;
  instance: string;
  transport: string;
  connections: number;
}

export interface Message {
  id: string;
  type: string;
  from: string;
  to?: string;
  ts: string;
  tags?: string[];
  responseTo?: string[];
  body?: unknown;
}

/**
 * The logged-in principal: its access token lives here, in this object's memory, and nowhere
 * else — not in localStorage, sessionStorage or a cookie a script could read later
 * (docs/portal.md, "Sessions"). Reloading the page logs out.
 */
export class Session {
  private client?: Promise<ClientSession>;

  constructor(
    readonly principal: Principal,
    private readonly token: string,
    readonly expiresAt: number,
    private readonly onExpired: (reason: string) => void,
  ) {}

  static async login(id: string, secret: string, onExpired: (reason: string) => void): Promise<Session> {
    const body = await request<{ accessToken: string; expiresAt: string; principal: Principal }>('POST', `${API}/principals/auth`, undefined, { id, secret });
    return new Session(body.principal, body.accessToken, Date.parse(body.expiresAt), onExpired);
  }

  async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    try {
      return await request<T>(method, API + path, this.token, body);
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) this.onExpired(err.message);
      throw err;
    }
  }

  /** The client library's session on the same token: live messages over SSE (stream tickets) and commands. */
  live(): Promise<ClientSession> {
    this.client ??= connect({ url: location.origin + API, id: this.principal.id, accessToken: this.token });
    return this.client;
  }

  /**
   * Whether the principal holds `admin` on the system (what registering and the sink routes
   * need): it decides what the menus offer. The server checks every call whatever they show.
   */
  isSystemAdmin(): Promise<boolean> {
    return this.call('GET', '/sinks').then(
      () => true,
      () => false,
    );
  }

  async close(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    await (await client?.catch(() => undefined))?.close();
  }
}

async function request<T>(method: string, url: string, token: string | undefined, body?: unknown): Promise<T> {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(url, {
      method,
      headers,
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      cache: 'no-store',
    });
  } catch (err) {
    throw new ApiError(0, 'NETWORK', `the server did not answer (${(err as Error).message})`);
  }
  if (res.status === 204) return undefined as T;
  const type = res.headers.get('content-type') ?? '';
  const payload: unknown = type.includes('json') ? await res.json() : await res.text();
  // /ready answers 503 with its report when the instance is not ready: a report all the same.
  if (!res.ok && !(res.status === 503 && url === '/ready')) {
    const error = (payload as { error?: { code: string; message: string } })?.error;
    throw new ApiError(res.status, error?.code ?? `HTTP_${res.status}`, error?.message ?? `HTTP ${res.status}`);
  }
  return payload as T;
}

/** Public root routes (`/ready`, `/metrics`) need no token. */
export function rootGet<T>(path: '/ready' | '/health' | '/metrics'): Promise<T> {
  return request<T>('GET', path, undefined);
}

export function query(params: Record<string, string | number | undefined | null>): string {
  const search = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') search.set(k, String(v));
  const s = search.toString();
  return s ? `?${s}` : '';
}
