import type { AuthenticateError, Client } from 'aedes';
import type { Logger } from '../../core/logger.js';
import type { Cluster } from '../../core/ports/cluster.js';
import type { Principal } from '../../core/ports/principal.js';
import type { SessionState } from '../../core/ports/session-state.js';
import { dropWill } from './aedes-seam.js';
import type { MqttMetrics } from './metrics.js';
import type { SessionStore } from './session-store.js';
import type { SharedSessionStore } from './shared-session-store.js';

/** Cluster event: a client connected on some instance; any other connection with its id ends [MQTT-3.1.4-2]. */
export const CLIENT_CONNECTED = 'mqtt.connected';

/** With a cluster: the shared state that binds client ids and counts sessions across instances. */
export interface SharedSessions {
  state: SessionState;
  store: SharedSessionStore;
  cluster: Cluster;
  /** Unique in the deployment: the instance and its run. */
  connectionPrefix: string;
}

// MQTT 3.1.1 §3.2.2.3 CONNACK return codes.
export const IDENTIFIER_REJECTED = 2;
export const SERVER_UNAVAILABLE = 3;
export const BAD_USERNAME_OR_PASSWORD = 4;
export const NOT_AUTHORIZED = 5;

export function refusal(code: number, message: string): AuthenticateError {
  return Object.assign(new Error(message), { returnCode: code });
}

/** Who holds a client id: the principal that connected with it, and its connection if open. */
interface Holder {
  principal: string;
  client?: Client;
  /** A persistent session (clean session 0) keeps the id bound while it is offline. */
  persistent: boolean;
}

/**
 * Connections and client ids, per principal. A client id belongs to the principal that holds it:
 * while it is connected, or has a persistent session, another principal connecting with it is
 * refused (CONNACK 2) instead of taking over its session [MQTT-3.1.4-2] and the commands queued
 * for it. A principal holds at most `maxSessions` persistent sessions; one more ends its least
 * recently connected offline one. A revoked principal's connections close without their wills,
 * and a deleted principal's sessions end, so an id registered again inherits nothing.
 */
export class Sessions {
  readonly principals = new WeakMap<Client, Principal>();
  /** For a connection opened with an impersonation token: the impersonator, whose revocation ends it too. */
  readonly actors = new WeakMap<Client, string>();
  /** Connections authenticated by an access token end when the token expires. */
  readonly tokenExpiry = new Map<Client, number>();
  /** Open (or opening) connections per principal, to end them when it is revoked. */
  private readonly connections = new Map<string, Set<Client>>();
  private readonly holders = new Map<string, Holder>();
  /** Client ids of each principal's persistent sessions, least recently connected first. */
  private readonly persistent = new Map<string, Set<string>>();
  private expiryTimer?: NodeJS.Timeout;
  /** With shared sessions: the name of each connection in the shared state. */
  private readonly connectionNames = new WeakMap<Client, string>();
  /** Connections closed because their client id connected through another instance. */
  private readonly movedAway = new WeakSet<Client>();
  private connectionCount = 0;

  constructor(
    private readonly store: SessionStore,
    private readonly maxSessions: number,
    private readonly metrics: MqttMetrics,
    private readonly logger: Logger,
    private readonly shared?: SharedSessions,
  ) {}

  start(): void {
    this.expiryTimer = setInterval(() => {
      const now = Date.now();
      for (const [client, expires] of this.tokenExpiry) if (expires <= now) client.close();
    }, 5000);
    this.expiryTimer.unref();
  }

  stop(): void {
    clearInterval(this.expiryTimer);
  }

  principalOf(client: Client): Principal | undefined {
    return this.principals.get(client);
  }

  /**
   * Binds an authenticated client's id to its principal; returns the refusal when it may not
   * have it. With shared sessions the binding and the session count hold across instances.
   */
  admit(client: Client): AuthenticateError | null | Promise<AuthenticateError | null> {
    const principal = this.principals.get(client)!.id;
    const id = client.id;
    if (client.conn.destroyed) {
      this.tokenExpiry.delete(client);
      return refusal(SERVER_UNAVAILABLE, 'the connection closed while it was authenticated');
    }
    // From here on everything recorded for the connection is forgotten when it closes.
    client.conn.once('close', () => this.closed(client, principal));
    if (this.shared) return this.admitShared(client, principal, this.shared);
    const holder = this.holders.get(id);
    if (holder && holder.principal !== principal) {
      this.logger.debug({ clientId: id, principal }, 'mqtt client id belongs to another principal');
      return refusal(IDENTIFIER_REJECTED, 'the client id belongs to another principal');
    }
    if (!client.clean) {
      let ids = this.persistent.get(principal);
      if (!ids) this.persistent.set(principal, (ids = new Set()));
      if (!ids.has(id) && ids.size >= this.maxSessions && !this.evictOffline(ids)) {
        this.metrics.limitHit('maxSessions');
        return refusal(IDENTIFIER_REJECTED, `at most ${this.maxSessions} persistent sessions per principal (mqtt option maxSessions), all connected`);
      }
      ids.delete(id); // re-added last: the most recently connected
      ids.add(id);
    } else if (holder?.persistent) {
      // A clean session replaces the persistent one [MQTT-3.1.2-6]: aedes and the store wipe it.
      this.persistent.get(principal)?.delete(id);
    }
    this.holders.set(id, { principal, client, persistent: !client.clean });
    this.opened(client, principal);
    return null;
  }

  private async admitShared(client: Client, principal: string, shared: SharedSessions): Promise<AuthenticateError | null> {
    const connection = `${shared.connectionPrefix}:${++this.connectionCount}`;
    // Named before the first await: a close meanwhile releases what the admission binds.
    this.connectionNames.set(client, connection);
    let admission;
    try {
      admission = await shared.state.admit(client.id, principal, !client.clean, connection, this.maxSessions);
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'mqtt connect refused: shared session state unreachable');
      return refusal(SERVER_UNAVAILABLE, 'session state unavailable, try again later');
    }
    if (!admission.admitted) {
      if (admission.reason === 'taken') {
        this.logger.debug({ clientId: client.id, principal }, 'mqtt client id belongs to another principal');
        return refusal(IDENTIFIER_REJECTED, 'the client id belongs to another principal');
      }
      this.metrics.limitHit('maxSessions');
      return refusal(IDENTIFIER_REJECTED, `at most ${this.maxSessions} persistent sessions per principal (mqtt option maxSessions), all connected`);
    }
    if (admission.ended.length > 0) {
      this.metrics.limitHit('maxSessions');
      shared.store.forget(admission.ended);
    }
    this.opened(client, principal);
    shared.cluster.broadcast(CLIENT_CONNECTED, { clientId: client.id, connection }).catch(() => {});
    return null;
  }

  /** Another instance admitted `clientId`: a connection with that id here is the older one. */
  connectedElsewhere(client: Client | undefined, connection: string): void {
    if (!client || this.connectionNames.get(client) === connection) return;
    this.movedAway.add(client);
    client.close();
  }

  /** Whether `client` was closed because its client id connected through another instance. */
  wasTakenOverElsewhere(client: Client): boolean {
    return this.movedAway.has(client);
  }

  private opened(client: Client, principal: string): void {
    for (const revocable of this.revocableBy(client, principal)) {
      let open = this.connections.get(revocable);
      if (!open) this.connections.set(revocable, (open = new Set()));
      open.add(client);
    }
  }

  /** The principals whose revocation closes this connection: its own, and its impersonator's. */
  private revocableBy(client: Client, principal: string): string[] {
    const actor = this.actors.get(client);
    return actor === undefined ? [principal] : [principal, actor];
  }

  /** Ends the least recently connected offline session among `ids`; false when all are connected. */
  private evictOffline(ids: Set<string>): boolean {
    for (const other of ids) {
      if (this.holders.get(other)?.client) continue;
      this.metrics.limitHit('maxSessions');
      ids.delete(other);
      this.holders.delete(other);
      this.quietly(this.store.endSession(other));
      return true;
    }
    return false;
  }

  private closed(client: Client, principal: string): void {
    this.tokenExpiry.delete(client);
    for (const revocable of this.revocableBy(client, principal)) {
      const open = this.connections.get(revocable);
      open?.delete(client);
      if (open?.size === 0) this.connections.delete(revocable);
    }
    const connection = this.connectionNames.get(client);
    if (this.shared && connection !== undefined) {
      this.quietly(this.shared.state.closed(client.id, connection));
      return;
    }
    const holder = this.holders.get(client.id);
    if (holder?.client !== client) return; // taken over by a newer connection of the same principal
    holder.client = undefined;
    if (!holder.persistent) this.holders.delete(client.id);
  }

  /**
   * Closes a revoked principal's connections. A revoked principal may no longer say anything, so
   * its wills are dropped first; once deleted, its sessions end too (shared ones by the instance
   * where it was deleted, `local`, for all).
   */
  revoke(principal: string, reason: string, local = true): void {
    for (const client of this.connections.get(principal) ?? []) {
      this.logger.info({ principal, reason }, 'closing MQTT connection of a revoked principal');
      dropWill(client);
      this.quietly(this.store.delWill(client));
      client.close();
    }
    if (reason !== 'deleted') return;
    if (this.shared) {
      const { state, store } = this.shared;
      if (local) this.quietly(state.endSessionsOf(principal).then((ids) => store.forget(ids)));
      return;
    }
    for (const id of this.persistent.get(principal) ?? []) {
      this.holders.delete(id);
      this.quietly(this.store.endSession(id));
    }
    this.persistent.delete(principal);
  }

  /** The in-memory store does not fail; a shared one may, and then the session state is only stale. */
  private quietly(work: Promise<unknown>): void {
    work.catch((err: unknown) => this.logger.warn({ err }, 'mqtt session store failed'));
  }
}
