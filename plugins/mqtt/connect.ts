import type { AuthenticateError, Client, ConnectPacket } from 'aedes';
import type { Duplex } from 'node:stream';
import type { Authenticator } from '../../core/authenticator.js';
import type { Certificates } from '../../core/certificates.js';
import type { Authentication } from '../../core/ports/identity.js';
import { NitrogenError, isNitrogenError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { Principal } from '../../core/ports/principal.js';
import type { Presence } from '../../core/presence.js';
import type { Peer } from './listeners.js';
import { BAD_USERNAME_OR_PASSWORD, IDENTIFIER_REJECTED, NOT_AUTHORIZED, SERVER_UNAVAILABLE, refusal, type Sessions } from './sessions.js';

/** Refusals that say "not now" rather than "not you": the client may retry later (CONNACK 3). */
const RETRY_LATER = new Set(['NITROGEN_ERR_RATE_LIMITED', 'NITROGEN_ERR_OVERLOADED', 'NITROGEN_ERR_UNAVAILABLE']);

function connackCode(code: string): number {
  if (RETRY_LATER.has(code)) return SERVER_UNAVAILABLE;
  return code === 'NITROGEN_ERR_PRINCIPAL_DISABLED' ? NOT_AUTHORIZED : BAD_USERNAME_OR_PASSWORD;
}

export interface ConnectDeps {
  authenticator: Authenticator;
  certificates: Certificates;
  /** How each connection arrived: its address and any client certificate (listeners.ts). */
  peers: WeakMap<Duplex, Peer>;
  presence: Presence;
  sessions: Sessions;
  logger: Logger;
}

type Done = (err: AuthenticateError | null, ok: boolean | null) => void;

/**
 * CONNECT: what MQTT 3.1.1 refuses before credentials are looked at, then authentication by the
 * Identity port, then the client id's binding to the principal (sessions.ts). Every refusal is
 * a CONNACK with its return code, counted in `nitrogen_mqtt_connects_refused_total` and logged
 * at debug only: an unauthenticated flood must not fill the log.
 */
export class ConnectHandler {
  private readonly principals: WeakMap<Client, Principal>;
  private readonly tokenExpiry: Map<Client, number>;
  private readonly emptyPersistentIds = new WeakSet<Client>();

  constructor(private readonly deps: ConnectDeps) {
    this.principals = deps.sessions.principals;
    this.tokenExpiry = deps.sessions.tokenExpiry;
  }

  /** aedes `preConnect`: sees the CONNECT as sent, before aedes names a client that gave no id. */
  preConnect(client: Client, packet: ConnectPacket, done: (err: Error | null, ok: boolean) => void): void {
    if (packet.clientId === '' && packet.clean === false) this.emptyPersistentIds.add(client);
    done(null, true);
  }

  /** aedes `authenticate`. */
  connect(client: Client, username: string | undefined, password: Buffer | undefined, done: Done): void {
    // [MQTT-3.1.3-8] a zero-byte client id with clean session 0 is refused with CONNACK 2.
    if (this.emptyPersistentIds.has(client)) {
      done(refusal(IDENTIFIER_REJECTED, 'a persistent session (clean session 0) needs a client id'), false);
      return;
    }
    this.authenticate(client, username, password, (err, ok) => {
      if (!ok) return done(err, ok);
      const refused = this.deps.sessions.admit(client);
      if (refused instanceof Promise) void refused.then((shared) => done(shared, shared === null));
      else done(refused, refused === null);
    });
  }

  /**
   * A client certificate (over TLS) authenticates without a password; a user name, if given,
   * must be its principal's id. Without one, or when it is refused and a password was given, the
   * user name and password do.
   */
  private credentials(client: Client, username: string | undefined, password: Buffer | undefined): Promise<Authentication> {
    const peer = this.deps.peers.get(client.conn);
    const origin = { remoteAddress: peer?.remoteAddress };
    const byPassword = () => {
      if (!username || !password) return Promise.reject(new NitrogenError('NITROGEN_ERR_BAD_CREDENTIALS', 'username and password are required'));
      // The password is a secret or an access token: the Authenticator tells them apart and rate-limits both.
      return this.deps.authenticator.password(username, password.toString('utf8'), origin);
    };
    if (!peer?.certificate) return byPassword();
    return this.deps.certificates.authenticate(peer.certificate, origin).then(
      (authentication) => {
        if (username && username !== authentication.principal.id) throw new NitrogenError('NITROGEN_ERR_BAD_CREDENTIALS', "the user name is not the client certificate's principal");
        return authentication;
      },
      (err: unknown) => (password ? byPassword() : Promise.reject(err)),
    );
  }

  private authenticate(client: Client, username: string | undefined, password: Buffer | undefined, done: Done): void {
    this.credentials(client, username, password).then(
      ({ principal, expiresAt, actor }) => {
        this.principals.set(client, principal);
        if (actor !== undefined) this.deps.sessions.actors.set(client, actor);
        if (expiresAt !== null) this.tokenExpiry.set(client, expiresAt);
        this.deps.presence.seenNow(principal.id);
        done(null, true);
      },
      (err: unknown) => {
        const code = isNitrogenError(err) ? err.code : 'NITROGEN_ERR_INTERNAL';
        this.deps.logger.debug({ clientId: client.id, username, code }, 'mqtt connect refused');
        done(refusal(connackCode(code), (err as Error).message), false);
      },
    );
  }
}
