import type { Lifecycle } from './lifecycle.js';
import type { Action, Principal, PrincipalRef } from './principal.js';

export interface AccessToken {
  accessToken: string;
  expiresAt: string;
}

/** Who presented a credential, and until when the credential holds. */
export interface Authentication {
  principal: Principal;
  /**
   * When the credential stops being accepted, in ms since the epoch (a token's expiry); null for
   * a secret or password, which holds until it is replaced. A session opened with the
   * credential (an MQTT connection, an SSE stream) ends then.
   */
  expiresAt: number | null;
  /**
   * For a token issued by impersonation: the principal that obtained it to act as `principal`.
   * Such a token, and the sessions opened with it, end when this principal is revoked too.
   */
  actor?: string;
}

export interface IssueOptions {
  /** Impersonation: `actor` obtains a token for `principal` (it holds `impersonate` on it). */
  actor?: Principal;
}

/**
 * The Identity port: authentication, access tokens and authorization. Transports reach it
 * through the core's Authenticator (core/authenticator.ts), which adds the rate limits, so an
 * implementation answers only for credentials; it does not need to count attempts.
 *
 * - `authenticateSecret` and `authenticateToken` answer who presented the credential and until
 *   when it holds, or throw NITROGEN_ERR_BAD_CREDENTIALS (unknown id or wrong secret: the two
 *   are not told apart), NITROGEN_ERR_TOKEN_EXPIRED, NITROGEN_ERR_TOKEN_INVALID (also for a token
 *   without an expiry, and for an impersonation token whose actor is gone, disabled, has new
 *   credentials or no longer holds `impersonate`) or NITROGEN_ERR_PRINCIPAL_DISABLED; and
 *   NITROGEN_ERR_OVERLOADED when it cannot check a password now. Secrets are compared in
 *   constant time and never logged.
 * - `isAccessToken` tells from its shape alone whether a credential is one of this identity's
 *   access tokens: an MQTT password may be a secret or a token.
 * - `issueToken` makes an access token that always expires; with `actor` (impersonation) it
 *   holds only while the actor may impersonate the principal.
 * - `authorize` answers whether `actor` may perform `action` on `target` (a principal id, or
 *   null for an action on the system, such as registering principals). It is synchronous
 *   because MQTT forwarding asks it for every delivery: an implementation decides from
 *   permission records it holds in memory. Once `permissionsChanged()` resolved, decisions
 *   reflect the change; changes made by another instance show within a configured refresh time.
 */
export interface Identity extends Lifecycle {
  authenticateSecret(id: string, secret: string): Promise<Authentication>;
  authenticateToken(token: string): Promise<Authentication>;
  isAccessToken(credential: string): boolean;
  issueToken(principal: Principal, options?: IssueOptions): Promise<AccessToken>;
  /** A new random secret and the digest to store for it. */
  newSecret(): { secret: string; secretHash: string };
  /** A digest for a secret chosen by a person (slow hash). */
  hashPassword(password: string): Promise<string>;
  authorize(actor: PrincipalRef, action: Action, target: string | null): boolean;
  /** Ids the actor may `view` or `subscribe` to, or 'all' when a wildcard record allows any. */
  scopeOf(actor: PrincipalRef, action: 'view' | 'subscribe'): 'all' | Set<string>;
  /** Reloads permission records after a change; resolves when decisions reflect it. */
  permissionsChanged(): Promise<void>;
}
