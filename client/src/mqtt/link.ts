import { Backoff, type BackoffOptions } from '../backoff.js';
import { ClientError } from '../errors.js';
import { MqttConnection, type StreamOpener } from './connection.js';
import type { IncomingPublish } from './packet-reader.js';
import { SUBACK_FAILURE } from './packets.js';

export interface LinkOptions {
  /** How to open a connection; asked at each attempt (it may have to find the endpoint first). */
  opener(): Promise<StreamOpener>;
  clientId: string;
  username: string;
  /** The CONNECT password for each attempt: a secret, or a token fresh enough. */
  password(): Promise<string>;
  /** When the password in use is due for renewal (a token's), to reconnect with a new one before it expires; null if never. */
  passwordRenewAt(): number | null;
  keepaliveSeconds: number;
  connectTimeoutMs: number;
  maxPacketBytes: number;
  backoff: BackoffOptions;
  /** A connection that held this long resets the backoff. */
  resetAfterMs: number;
}

export interface LinkHandlers<Token> {
  online(connection: MqttConnection<Token>): void;
  /** The connection is gone (`error` null when we closed it); the link tries again unless closed. */
  offline(error: Error | null): void;
  /**
   * CONNECT could not be made, or was refused: after CONNACK 3 ("retry later"), 4 or 5 the link
   * tries again after a delay; after CONNACK 2 never again, the client id being another's.
   */
  failed(error: ClientError | Error): void;
  puback(token: Token): void;
  publish(message: IncomingPublish): void;
  /** A filter that was granted before was refused when subscribed again after a reconnect. */
  refusedAgain(filter: string): void;
}

/** A refusal that trying again cannot change: the server binds a client id to the principal that holds it. */
function refusedForGood(error: unknown): error is ClientError {
  return error instanceof ClientError && error.code === 'NITROGEN_CLIENT_ID_REJECTED';
}

/**
 * An MQTT session that stays up: it connects, and when the connection is lost or refused it
 * tries again after a backoff with jitter, subscribing again to every filter it holds (sessions
 * are clean, so the server forgets them). With a token as password it reconnects with a new one
 * shortly before the old one expires. A client id the server refuses (CONNACK 2) ends it.
 */
export class MqttLink<Token> {
  private connection: MqttConnection<Token> | null = null;
  private readonly backoff: Backoff;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private swapTimer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;
  /** Why the link stopped trying for good (CONNACK 2), if it did. */
  private refusal: ClientError | null = null;
  private connectedAt = 0;
  /** Topic filters held, with how many subscriptions hold each. */
  private readonly filters = new Map<string, number>();
  /** Subscriptions made while offline, answered by the SUBACK of the next connection. */
  private waiting: Array<{ filters: string[]; resolve(codes: number[]): void; reject(error: Error): void }> = [];

  constructor(
    private readonly options: LinkOptions,
    private readonly handlers: LinkHandlers<Token>,
  ) {
    this.backoff = new Backoff(options.backoff);
  }

  start(): void {
    void this.attempt();
  }

  /** Holds `filters`; resolves with their SUBACK return codes once subscribed (offline: once the next connection subscribed them). */
  async subscribe(filters: string[]): Promise<number[]> {
    if (this.refusal) throw this.refusal;
    const fresh = filters.filter((f) => !this.filters.has(f));
    for (const f of filters) this.filters.set(f, (this.filters.get(f) ?? 0) + 1);
    if (!this.connection?.open) return new Promise((resolve, reject) => this.waiting.push({ filters, resolve, reject }));
    if (fresh.length === 0) return filters.map(() => 1);
    const codes = await this.connection.subscribe(fresh);
    const byFilter = new Map(fresh.map((f, i) => [f, codes[i] ?? SUBACK_FAILURE]));
    for (const [f, code] of byFilter) if (code === SUBACK_FAILURE) this.filters.delete(f);
    return filters.map((f) => byFilter.get(f) ?? 1);
  }

  release(filters: string[]): void {
    const gone: string[] = [];
    for (const f of filters) {
      const n = (this.filters.get(f) ?? 0) - 1;
      if (n > 0) this.filters.set(f, n);
      else if (this.filters.delete(f)) gone.push(f);
    }
    if (gone.length > 0 && this.connection?.open) this.connection.unsubscribe(gone).catch(() => {});
  }

  close(): void {
    this.stop(new ClientError('NITROGEN_CLIENT_CLOSED', 'the session closed before it could subscribe'));
  }

  private stop(reason: ClientError): void {
    this.closed = true;
    for (const w of this.waiting.splice(0)) w.reject(reason);
    clearTimeout(this.retryTimer);
    clearTimeout(this.swapTimer);
    this.connection?.close();
    this.connection = null;
  }

  private async attempt(): Promise<void> {
    if (this.closed) return;
    const o = this.options;
    let connection: MqttConnection<Token>;
    try {
      const open = await o.opener();
      const password = await o.password();
      if (this.closed) return;
      connection = await MqttConnection.open<Token>(
        open,
        { clientId: o.clientId, username: o.username, password, keepaliveSeconds: o.keepaliveSeconds, connectTimeoutMs: o.connectTimeoutMs, maxPacketBytes: o.maxPacketBytes },
        {
          onPuback: this.handlers.puback,
          onPublish: (message) => this.handlers.publish(message),
          onClose: (error) => this.lost(connection, error),
        },
      );
    } catch (err) {
      if (this.closed) return;
      if (refusedForGood(err)) {
        this.refusal = err;
        this.stop(err);
      }
      this.handlers.failed(err as Error);
      return this.retryLater();
    }
    if (this.closed) return connection.close();
    if (!connection.open) {
      // Closed in the same read as its CONNACK (a server that accepts, then breaks the protocol or hangs up).
      this.handlers.failed(connection.closeError ?? new ClientError('NITROGEN_CLIENT_UNREACHABLE', 'the server closed the connection'));
      return this.retryLater();
    }
    this.connection = connection;
    this.connectedAt = Date.now();
    this.scheduleSwap();
    // SUBSCRIBE first: the server handles packets in order, so a command queued while offline is
    // published after the subscription that will receive its reply.
    void this.resubscribe(connection);
    this.handlers.online(connection);
  }

  private async resubscribe(connection: MqttConnection<Token>): Promise<void> {
    const filters = [...this.filters.keys()];
    if (filters.length === 0) return;
    const waiting = this.waiting;
    this.waiting = [];
    const fresh = new Set(waiting.flatMap((w) => w.filters));
    try {
      const codes = await connection.subscribe(filters);
      const byFilter = new Map(filters.map((f, i) => [f, codes[i] ?? SUBACK_FAILURE]));
      for (const [f, code] of byFilter) {
        if (code !== SUBACK_FAILURE) continue;
        this.filters.delete(f);
        // Refused now, though granted before: a permission was taken away meanwhile.
        if (!fresh.has(f)) this.handlers.refusedAgain(f);
      }
      for (const w of waiting) w.resolve(w.filters.map((f) => byFilter.get(f) ?? SUBACK_FAILURE));
    } catch {
      // The connection went away meanwhile: the next one subscribes again, and answers them.
      this.waiting.push(...waiting);
    }
  }

  private lost(connection: MqttConnection<Token>, error: Error | null): void {
    if (this.connection !== connection) return;
    this.connection = null;
    clearTimeout(this.swapTimer);
    if (Date.now() - this.connectedAt >= this.options.resetAfterMs) this.backoff.reset();
    this.handlers.offline(error);
    if (this.closed) return;
    // Closed by us to swap tokens: at once; else after a delay.
    if (error === null) void this.attempt();
    else this.retryLater();
  }

  private retryLater(): void {
    if (this.closed) return;
    this.retryTimer = setTimeout(() => void this.attempt(), this.backoff.next());
  }

  /** The server closes a connection whose token expired: swap it for a new one when it is due for renewal. */
  private scheduleSwap(): void {
    const renewAt = this.options.passwordRenewAt();
    if (renewAt === null) return;
    // setTimeout takes at most 2^31-1 ms; a longer wait is cut short and checked again.
    this.swapTimer = setTimeout(
      () => {
        if (Date.now() < renewAt) return this.scheduleSwap();
        this.connection?.close();
      },
      Math.min(Math.max(0, renewAt - Date.now()), 2 ** 31 - 1),
    );
    this.swapTimer.unref?.();
  }
}
