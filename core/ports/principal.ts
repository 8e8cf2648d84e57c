/** The kinds of principal Nitrogen knows (docs/architecture.md, "Identity"). */
export type PrincipalType = 'device' | 'app' | 'user';
export const PRINCIPAL_TYPES: readonly PrincipalType[] = ['device', 'app', 'user'];

/** What a principal may do to another principal (docs/architecture.md, "Identity"). */
export type Action = 'send' | 'subscribe' | 'view' | 'admin' | 'impersonate';
export const ACTIONS: readonly Action[] = ['send', 'subscribe', 'view', 'admin', 'impersonate'];

/** A principal as clients see it: never holds credentials. */
export interface Principal {
  id: string;
  type: PrincipalType;
  name?: string;
  tags: string[];
  createdAt: string;
  lastSeenAt?: string;
  enabled: boolean;
}

/** Enough of a principal to decide on its permissions. */
export type PrincipalRef = Pick<Principal, 'id'>;

/** A principal as the registry stores it, with its credential digest. */
export interface PrincipalRecord extends Principal {
  /** `sha256:<hex>` for server-generated secrets, `scrypt:<params>:<salt>:<hash>` for passwords. */
  secretHash?: string;
}

/**
 * A permission record (Nitrogen's model): `issuedTo` may do `action` on `principalFor`
 * if `authorized`. A null field matches any value. Records are evaluated by ascending
 * `priority` (then creation order); the first match decides; no match denies.
 */
export interface Permission {
  id: string;
  issuedTo: string | null;
  principalFor: string | null;
  action: Action | null;
  authorized: boolean;
  priority: number;
  expires?: string;
  createdAt: string;
}

export function publicPrincipal(record: PrincipalRecord): Principal {
  const { secretHash: _secret, ...principal } = record;
  return principal;
}
