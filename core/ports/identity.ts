import type { Lifecycle } from './lifecycle.js';
import type { Action, Principal, PrincipalRef } from './principal.js';

export interface AccessToken {
  accessToken: string;
  expiresAt: string;
}

/**
 * The Identity port: authentication, access tokens and authorization.
 *
 * - `authenticateSecret` and `authenticateToken` return the principal or throw
 *   NITROGEN_ERR_BAD_CREDENTIALS (unknown id or wrong secret: the two are not told apart),
 *   NITROGEN_ERR_TOKEN_EXPIRED, NITROGEN_ERR_TOKEN_INVALID or NITROGEN_ERR_PRINCIPAL_DISABLED.
 *   Secrets are compared in constant time and never logged.
 * - `authorize` answers whether `actor` may perform `action` on `target` (a principal id, or
 *   null for an action on the system, such as registering principals). It is synchronous
 *   because MQTT forwarding asks it for every delivery: an implementation decides from
 *   permission records it holds in memory. Once `permissionsChanged()` resolved, decisions
 *   reflect the change; changes made by another instance show within a configured refresh time.
 */
export interface Identity extends Lifecycle {
  authenticateSecret(id: string, secret: string): Promise<Principal>;
  authenticateToken(token: string): Promise<Principal>;
  issueToken(principal: Principal): Promise<AccessToken>;
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
