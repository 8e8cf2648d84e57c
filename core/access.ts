import { NitrogenError } from './errors.js';
import type { Identity } from './ports/identity.js';
import type { Action, PrincipalRef } from './ports/principal.js';

/**
 * Throws 403 NITROGEN_ERR_FORBIDDEN unless `actor` may perform `action` on `target` (a principal
 * id, or null for an action on the system). The one wording of a refused permission, whichever
 * use case or transport asks.
 */
export function requireAllowed(identity: Identity, actor: PrincipalRef, action: Action, target: string | null): void {
  if (!identity.authorize(actor, action, target)) {
    const what = target === null ? action : `${action} on '${target}'`;
    throw new NitrogenError('NITROGEN_ERR_FORBIDDEN', `'${actor.id}' may not ${what}`);
  }
}
