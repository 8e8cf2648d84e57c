import { Counter, Gauge, type Registry as MetricsRegistry } from 'prom-client';
import { z } from 'zod';
import { ClientAddresses, isAddressOrSubnet } from './client-address.js';
import { CredentialLimiter, FailureLimits } from './credential-limiter.js';
import { NitrogenError, isNitrogenError, type ErrorCode } from './errors.js';
import type { Logger } from './logger.js';
import { HashingOptions } from './password-hasher.js';
import type { Authentication, Identity } from './ports/identity.js';

/** The `credentials` section of the configuration (docs/configuration.md). */
export const CredentialsOptions = FailureLimits.extend({
  /**
   * Proxies (a front door) whose connections stand for clients behind them: over REST their
   * `X-Forwarded-For` names the client; over MQTT, which carries no such header, connections
   * from them are limited per principal only.
   */
  trustedProxies: z.array(z.string().refine(isAddressOrSubnet, 'must be an IP address or a subnet such as 10.0.0.0/8')).max(1000).default([]),
  hashing: HashingOptions.default(HashingOptions.parse({})),
});
export type CredentialsOptions = z.output<typeof CredentialsOptions>;

/** Where a credential arrived from: the connection's address, and the REST `X-Forwarded-For` header. */
export interface Origin {
  remoteAddress?: string;
  forwardedFor?: string;
}

type Kind = 'secret' | 'token' | 'api-key' | 'claim-code' | 'certificate';
type Outcome = 'ok' | 'refused' | 'limited' | 'overloaded';

/**
 * The one way transports check credentials (MQTT CONNECT, `POST /principals/auth`, bearer
 * tokens): rate limit per principal and per client address → the Identity port (whose password
 * checks run on the bounded PasswordHasher) → metrics. Because it sits in front of the port, a
 * custom Identity gets the same protection as the default one.
 *
 * A secret check is admitted or refused before anything is hashed; a token check is cheap (one
 * HMAC), so it runs first and only a failure counts against the address. Successes cost nothing,
 * so a fleet that logs in correctly, thousands of cars behind one NAT address, is never refused.
 */
export class Authenticator {
  private readonly limiter: CredentialLimiter;
  private readonly outcomes: Record<Kind, Record<Outcome, { inc(): void }>>;
  readonly addresses: ClientAddresses;

  constructor(
    private readonly identity: Identity,
    options: CredentialsOptions,
    logger: Logger,
    metrics: MetricsRegistry,
  ) {
    this.limiter = new CredentialLimiter(options, logger);
    this.addresses = new ClientAddresses(options.trustedProxies);
    const checks = new Counter({ name: 'nitrogen_credential_checks_total', help: 'Credential checks by kind (secret, token) and outcome (ok, refused, limited, overloaded)', labelNames: ['kind', 'outcome'], registers: [metrics] });
    const outcomes = (kind: Kind) => ({ ok: checks.labels(kind, 'ok'), refused: checks.labels(kind, 'refused'), limited: checks.labels(kind, 'limited'), overloaded: checks.labels(kind, 'overloaded') });
    this.outcomes = { secret: outcomes('secret'), token: outcomes('token'), 'api-key': outcomes('api-key'), 'claim-code': outcomes('claim-code'), certificate: outcomes('certificate') };
    const limiter = this.limiter;
    new Gauge({
      name: 'nitrogen_credential_limiter_tracked',
      help: 'Principals and addresses with recent failed credential checks',
      labelNames: ['table'],
      registers: [metrics],
      collect() {
        const tracked = limiter.tracked;
        this.set({ table: 'principals' }, tracked.principals);
        this.set({ table: 'addresses' }, tracked.addresses);
      },
    });
  }

  /** A principal id and its secret or password. */
  async secret(id: string, secret: string, origin: Origin): Promise<Authentication> {
    const client = this.addresses.resolve(origin.remoteAddress, origin.forwardedFor);
    let attempt;
    try {
      attempt = this.limiter.begin(id, client.sharedProxy ? undefined : client.key);
    } catch (err) {
      this.outcomes.secret.limited.inc();
      throw err;
    }
    try {
      const authentication = await this.identity.authenticateSecret(id, secret);
      attempt.succeeded();
      this.outcomes.secret.ok.inc();
      return authentication;
    } catch (err) {
      // Only a wrong secret or a disabled principal counts: a check that could not run
      // (hashing overloaded, registry down) says nothing about the secret, so it is given back.
      if (!isNitrogenError(err, 'NITROGEN_ERR_BAD_CREDENTIALS') && !isNitrogenError(err, 'NITROGEN_ERR_PRINCIPAL_DISABLED')) attempt.succeeded();
      this.outcomes.secret[isNitrogenError(err, 'NITROGEN_ERR_OVERLOADED') ? 'overloaded' : 'refused'].inc();
      throw err;
    }
  }

  /**
   * Another credential checked under the same limits as a secret: an API key (`subject` its key
   * id), a claim code (`subject` the principal claiming), a client certificate (its fingerprint).
   * Only the refusals in `failures` count against the subject and the address; `limiter`, when
   * given, holds limits of its own (claim codes are guessed more easily than secrets).
   */
  async limited<T>(kind: Kind, subject: string, origin: Origin, check: () => Promise<T>, options: { limiter?: CredentialLimiter; failures?: readonly ErrorCode[] } = {}): Promise<T> {
    const client = this.addresses.resolve(origin.remoteAddress, origin.forwardedFor);
    const failures = options.failures ?? ['NITROGEN_ERR_BAD_CREDENTIALS'];
    let attempt;
    try {
      attempt = (options.limiter ?? this.limiter).begin(`${kind}:${subject}`, client.sharedProxy ? undefined : client.key);
    } catch (err) {
      this.outcomes[kind].limited.inc();
      throw err;
    }
    try {
      const result = await check();
      attempt.succeeded();
      this.outcomes[kind].ok.inc();
      return result;
    } catch (err) {
      if (!isNitrogenError(err) || !failures.includes(err.code)) attempt.succeeded();
      this.outcomes[kind][isNitrogenError(err, 'NITROGEN_ERR_OVERLOADED') ? 'overloaded' : 'refused'].inc();
      throw err;
    }
  }

  /** An access token; with `principalId`, it must be that principal's (MQTT's user name). */
  async token(token: string, origin: Origin, principalId?: string): Promise<Authentication> {
    try {
      const authentication = await this.identity.authenticateToken(token);
      if (principalId !== undefined && authentication.principal.id !== principalId) {
        throw new NitrogenError('NITROGEN_ERR_BAD_CREDENTIALS', 'the token belongs to another principal');
      }
      this.outcomes.token.ok.inc();
      return authentication;
    } catch (err) {
      if (!isNitrogenError(err) || err.status >= 500) throw err;
      throw this.tokenRefused(err, origin);
    }
  }

  /** Counts a refused token against its address: the refusal, or RATE_LIMITED once the address is over. */
  private tokenRefused(err: NitrogenError, origin: Origin): NitrogenError {
    const client = this.addresses.resolve(origin.remoteAddress, origin.forwardedFor);
    try {
      this.limiter.failed(client.sharedProxy ? undefined : client.key);
    } catch (limited) {
      this.outcomes.token.limited.inc();
      return limited as NitrogenError;
    }
    this.outcomes.token.refused.inc();
    return err;
  }

  /**
   * An MQTT CONNECT's user name and password: the password is a secret, or an access token of
   * that same principal (the Identity tells which by its shape).
   */
  async password(id: string, password: string, origin: Origin): Promise<Authentication> {
    return this.identity.isAccessToken(password) ? this.token(password, origin, id) : this.secret(id, password, origin);
  }
}
