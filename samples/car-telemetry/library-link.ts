import { connect, type ClientError, type Session } from '@nitrogen/client';
import type { CarLink, Endpoint, LinkListener } from './car-link.js';

export interface LibraryLinkOptions {
  /** Messages a car holds while it cannot send (out of coverage); beyond them the oldest go. */
  queueMessages: number;
  /** A directory for each car's queue file (`{id}.queue`), so queued messages survive a restart; in memory without. */
  queueDir?: string;
}

/** Return codes of the refusals the client library reports with the server's error codes. */
const REFUSALS: Record<string, number> = { NITROGEN_ERR_BAD_CREDENTIALS: 4, NITROGEN_ERR_PRINCIPAL_DISABLED: 5 };

/**
 * A car as a device built on the client library (`@nitrogen/client`): one session per car,
 * which reconnects by itself and keeps what the car sends while it is offline in its queue
 * (bounded, dropping the oldest), and resolves each send on the server's acknowledgement.
 * Credentials the server refuses are not retried: the car's session is closed.
 */
export class LibraryLink implements CarLink {
  readonly dropReason = 'the car was not connected';
  private session: Session | null = null;

  constructor(
    private readonly listener: LinkListener,
    private readonly options: LibraryLinkOptions,
  ) {}

  open(endpoint: Endpoint, _localAddress: string | undefined, id: string, secret: string, keepaliveS: number): void {
    connect({
      url: endpoint.rest,
      mqtt: endpoint.mqtt,
      id,
      secret,
      keepaliveSeconds: keepaliveS,
      reconnect: { initialDelayMs: 1000, maxDelayMs: 30_000 },
      queue: {
        maxMessages: this.options.queueMessages,
        whenFull: 'drop-oldest',
        ...(this.options.queueDir ? { file: `${this.options.queueDir}/${id}.queue`, fsync: 1000 } : {}),
      },
    }).then(
      (session) => this.opened(session),
      (err: ClientError) => {
        const refused = REFUSALS[err.code];
        if (refused !== undefined) this.listener.onRefused(refused);
        this.listener.onClosed(refused === undefined ? err.message : null, 0, false);
      },
    );
  }

  publish(type: string, tsMs: number, body: object): boolean {
    if (!this.session) return false;
    const sentAt = performance.now();
    this.session.send({ type, ts: new Date(tsMs).toISOString(), body }).then(
      () => this.listener.onAck(performance.now() - sentAt),
      () => {}, // dropped to make room or closed: counted by the session's events
    );
    return true;
  }

  idle(): void {
    // The library keeps the connection alive itself.
  }

  close(): void {
    const session = this.session;
    if (!session) return;
    this.session = null;
    void session.close().then(() => this.listener.onClosed(null, 0, false));
  }

  destroy(reason: string | null): void {
    const session = this.session;
    if (!session) return;
    this.session = null;
    void session.close().then(() => this.listener.onClosed(reason, 0, false));
  }

  private opened(session: Session): void {
    this.session = session;
    session.on('offline', (error) => {
      // A refusal comes as an `error` too, handled below.
      if (this.session === session && !(error && REFUSALS[(error as ClientError).code] !== undefined)) this.listener.onClosed(error ? describe(error) : 'closed', 0, true);
    });
    session.on('dropped', () => this.listener.onError(`message dropped: the car's queue held ${this.options.queueMessages} unsent`));
    session.on('online', () => this.session === session && this.listener.onConnected());
    session.on('error', (error) => {
      const refused = REFUSALS[error.code];
      if (refused === undefined || this.session !== session) return;
      this.session = null;
      this.listener.onRefused(refused);
      void session.close().then(() => this.listener.onClosed(null, 0, false));
    });
    this.listener.onConnected();
  }
}

/** The library's reasons in the simulator's words. */
function describe(error: Error): string {
  return error.message === 'the server closed the connection' ? 'closed by the server' : error.message;
}
