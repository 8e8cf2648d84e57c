import { ClientError } from './errors.js';

/**
 * How a session proves who it is to REST (and to MQTT, unless a client certificate in `tls`
 * does it in the handshake). A device registered with an API key (`register`) has a secret like
 * any other.
 */
export type Credential =
  /** The principal's secret (devices, apps) or password (users). */
  | { secret: string }
  /** An access token from elsewhere; `renew` gives a fresh one before it expires. */
  | { accessToken: string; renew?: () => Promise<string> };

/**
 * A token is renewed 30 s before it expires, but not before half its lifetime nor after 80% of
 * it: a day-long token at 80%, a five-second one (in tests) at half.
 */
const RENEW_MARGIN_MS = 30_000;

/** The `exp` of a JWT, read without verifying it (the server does that): when to renew. */
function tokenExpiry(token: string): number | null {
  try {
    const part = token.split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/');
    const claims = JSON.parse(atob(part + '='.repeat((4 - (part.length % 4)) % 4))) as { exp?: unknown; iat?: unknown };
    return typeof claims.exp === 'number' ? claims.exp * 1000 : null;
  } catch {
    return null;
  }
}

interface Held {
  token: string;
  /** When to get a new one (ms since the epoch); Infinity when it never expires that we know of. */
  renewAt: number;
  expiresAt: number | null;
}

function hold(token: string, expiresAt: number | null): Held {
  if (expiresAt === null) return { token, renewAt: Infinity, expiresAt };
  const lifetime = expiresAt - Date.now();
  return { token, expiresAt, renewAt: Date.now() + Math.max(lifetime * 0.5, Math.min(lifetime * 0.8, lifetime - RENEW_MARGIN_MS)) };
}

/**
 * The session's access token for REST and SSE (and for MQTT when the credential is a token):
 * obtained with the secret (`POST /principals/auth`) or given, renewed before it expires, and
 * renewed at once when the server says it is expired or invalid. Concurrent callers share one
 * renewal.
 */
export class Tokens {
  private held: Held | null;
  private renewing: Promise<Held> | null = null;

  constructor(
    private readonly id: string,
    private readonly credential: Credential,
    private readonly authenticate: (id: string, secret: string) => Promise<{ accessToken: string; expiresAt: string }>,
  ) {
    this.held = 'accessToken' in credential ? hold(credential.accessToken, tokenExpiry(credential.accessToken)) : null;
  }

  /** A token valid for a while yet. */
  async token(): Promise<string> {
    if (this.held && Date.now() < this.held.renewAt) return this.held.token;
    return (await this.renew()).token;
  }

  /** A token valid for a while yet, with its expiry (ms since the epoch; null when unknown). */
  async grant(): Promise<{ token: string; expiresAt: number | null }> {
    const token = await this.token();
    return { token, expiresAt: this.held?.token === token ? this.held.expiresAt : tokenExpiry(token) };
  }

  /** When the current token is due for renewal (ms since the epoch), if it is known to expire. */
  get renewAt(): number | null {
    const at = this.held?.renewAt;
    return at === undefined || at === Infinity ? null : at;
  }

  /** The server refused `token`: the next `token()` gets a new one (unless another call did already). */
  refused(token: string): void {
    if (this.held?.token === token) this.held = { ...this.held, renewAt: 0 };
  }

  /** What MQTT's CONNECT carries as the password: the secret itself, or a fresh token. */
  async mqttPassword(): Promise<string> {
    return 'secret' in this.credential ? this.credential.secret : this.token();
  }

  get usesToken(): boolean {
    return !('secret' in this.credential);
  }

  private renew(): Promise<Held> {
    this.renewing ??= this.fetchToken().then(
      (held) => {
        this.renewing = null;
        return (this.held = held);
      },
      (err: unknown) => {
        this.renewing = null;
        throw err;
      },
    );
    return this.renewing;
  }

  private async fetchToken(): Promise<Held> {
    const c = this.credential;
    if ('secret' in c) {
      const answer = await this.authenticate(this.id, c.secret);
      return hold(answer.accessToken, Date.parse(answer.expiresAt));
    }
    if (!c.renew) {
      const expiresAt = this.held?.expiresAt;
      if (expiresAt !== null && expiresAt !== undefined && Date.now() >= expiresAt) {
        throw new ClientError('NITROGEN_ERR_TOKEN_EXPIRED', 'the access token has expired and the session has no renew function', { option: 'renew' });
      }
      // Nothing to renew with: keep using it until the server refuses it.
      return hold(c.accessToken, null);
    }
    const token = await c.renew();
    if (typeof token !== 'string' || token.length === 0) throw new ClientError('NITROGEN_CLIENT_BAD_OPTIONS', 'renew: must resolve with an access token', { option: 'renew' });
    return hold(token, tokenExpiry(token));
  }
}
