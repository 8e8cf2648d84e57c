import type { AuthenticateError, Client, ConnectPacket } from 'aedes';
import { decodeJwt } from 'jose';
import { isNitrogenError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { Identity } from '../../core/ports/identity.js';
import type { Principal } from '../../core/ports/principal.js';
import type { Presence } from '../../core/presence.js';
import { BAD_USERNAME_OR_PASSWORD, IDENTIFIER_REJECTED, NOT_AUTHORIZED, refusal, type Sessions } from './sessions.js';

const JWT_SHAPE = /^eyJ[\w-]*\.[\w-]+\.[\w-]+$/;

export interface ConnectDeps {
  identity: Identity;
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
      done(refused, refused === null);
    });
  }

  private authenticate(client: Client, username: string | undefined, password: Buffer | undefined, done: Done): void {
    if (!username || !password) {
      done(refusal(BAD_USERNAME_OR_PASSWORD, 'username and password are required'), false);
      return;
    }
    const secret = password.toString('utf8');
    const isToken = JWT_SHAPE.test(secret);
    const check = isToken ? this.deps.identity.authenticateToken(secret) : this.deps.identity.authenticateSecret(username, secret);
    check.then(
      (principal) => {
        if (principal.id !== username) {
          done(refusal(BAD_USERNAME_OR_PASSWORD, 'the token belongs to another principal'), false);
          return;
        }
        this.principals.set(client, principal);
        if (isToken) this.tokenExpiry.set(client, (decodeJwt(secret).exp ?? Infinity) * 1000);
        this.deps.presence.seenNow(principal.id);
        done(null, true);
      },
      (err: unknown) => {
        const code = isNitrogenError(err, 'NITROGEN_ERR_PRINCIPAL_DISABLED') ? NOT_AUTHORIZED : BAD_USERNAME_OR_PASSWORD;
        this.deps.logger.debug({ clientId: client.id, username, code: isNitrogenError(err) ? err.code : 'NITROGEN_ERR_INTERNAL' }, 'mqtt connect refused');
        done(refusal(code, (err as Error).message), false);
      },
    );
  }
}
