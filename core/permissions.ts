import type { Action, Permission, PrincipalRef } from './ports/principal.js';

/** The bootstrap principal (docs/configuration.md): allowed everything, whatever the records say. */
export const ADMIN_ID = 'admin';

/** Actions every principal holds on itself: it may send as itself and read its own messages. */
const SELF_ACTIONS: ReadonlySet<Action> = new Set<Action>(['send', 'subscribe', 'view']);

/** Orders records for evaluation: ascending priority, then creation time, then id. */
export function comparePermissions(a: Permission, b: Permission): number {
  return a.priority - b.priority || a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id);
}

function matches(record: Permission, actorId: string, action: Action, target: string | null, now: number): boolean {
  if (record.issuedTo !== null && record.issuedTo !== actorId) return false;
  // A record for one principal does not grant a system-wide action (target null).
  if (record.principalFor !== null && record.principalFor !== target) return false;
  // `admin` on a principal is full control of it, so it answers every action.
  if (record.action !== null && record.action !== action && record.action !== 'admin') return false;
  if (record.expires !== undefined && Date.parse(record.expires) <= now) return false;
  return true;
}

/**
 * Nitrogen's permission evaluation: the bootstrap admin may do anything; a principal may
 * send, subscribe and view as itself; otherwise the first matching record in priority order
 * decides, and no match denies. `records` must be sorted with comparePermissions.
 */
export function evaluate(records: readonly Permission[], actor: PrincipalRef, action: Action, target: string | null, now = Date.now()): boolean {
  if (actor.id === ADMIN_ID) return true;
  if (target === actor.id && SELF_ACTIONS.has(action)) return true;
  for (const record of records) {
    if (matches(record, actor.id, action, target, now)) return record.authorized;
  }
  return false;
}

/**
 * The principals whose messages `actor` may read with `action`: 'all' when the actor is the
 * admin or a wildcard record (principalFor null) allows it before any wildcard denial.
 * With 'all', individual denials still apply: callers check `evaluate` per message.
 */
export function scope(records: readonly Permission[], actor: PrincipalRef, action: 'view' | 'subscribe', now = Date.now()): 'all' | Set<string> {
  if (actor.id === ADMIN_ID) return 'all';
  const ids = new Set<string>([actor.id]);
  const decided = new Set<string>();
  for (const record of records) {
    if (record.issuedTo !== null && record.issuedTo !== actor.id) continue;
    if (record.action !== null && record.action !== action && record.action !== 'admin') continue;
    if (record.expires !== undefined && Date.parse(record.expires) <= now) continue;
    if (record.principalFor === null) {
      if (record.authorized) return 'all';
      break; // a wildcard denial decides every principal not decided above it
    }
    if (decided.has(record.principalFor)) continue;
    decided.add(record.principalFor);
    if (record.authorized) ids.add(record.principalFor);
  }
  return ids;
}

/**
 * Permission records prepared for the hot path: sorted once, grouped by `issuedTo`, and
 * decisions memoized per (actor, action, target) until the next record expires. Built anew
 * whenever the records change, so it is never mutated after construction.
 */
export class PermissionIndex {
  private readonly byActor = new Map<string, Permission[]>();
  private readonly wildcard: Permission[];
  private readonly decisions = new Map<string, boolean>();
  private readonly nextExpiry: number;

  constructor(
    readonly records: readonly Permission[],
    now = Date.now(),
  ) {
    const sorted = [...records].sort(comparePermissions);
    this.wildcard = sorted.filter((r) => r.issuedTo === null);
    for (const record of sorted) {
      if (record.issuedTo === null) continue;
      let list = this.byActor.get(record.issuedTo);
      if (!list) this.byActor.set(record.issuedTo, (list = []));
      list.push(record);
    }
    // Both lists are sorted, so their merge per actor is too.
    for (const [actor, list] of this.byActor) this.byActor.set(actor, mergeSorted(list, this.wildcard));
    let next = Infinity;
    for (const record of sorted) {
      const expires = record.expires === undefined ? Infinity : Date.parse(record.expires);
      if (expires > now && expires < next) next = expires;
    }
    this.nextExpiry = next;
  }

  /** True when a record has expired since the index was built: rebuild it. */
  stale(now = Date.now()): boolean {
    return now >= this.nextExpiry;
  }

  recordsFor(actorId: string): readonly Permission[] {
    return this.byActor.get(actorId) ?? this.wildcard;
  }

  authorize(actor: PrincipalRef, action: Action, target: string | null): boolean {
    const key = `${actor.id}\u0000${action}\u0000${target ?? ''}`;
    let decision = this.decisions.get(key);
    if (decision === undefined) {
      decision = evaluate(this.recordsFor(actor.id), actor, action, target);
      if (this.decisions.size >= 100_000) this.decisions.clear();
      this.decisions.set(key, decision);
    }
    return decision;
  }

  scope(actor: PrincipalRef, action: 'view' | 'subscribe'): 'all' | Set<string> {
    return scope(this.recordsFor(actor.id), actor, action);
  }
}

function mergeSorted(a: readonly Permission[], b: readonly Permission[]): Permission[] {
  const out: Permission[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (j >= b.length || (i < a.length && comparePermissions(a[i]!, b[j]!) <= 0)) out.push(a[i++]!);
    else out.push(b[j++]!);
  }
  return out;
}
