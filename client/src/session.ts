import { Inbox, type CommandHandler } from './commands.js';
import { Emitter } from './emitter.js';
import { checkedSize, encodeOutgoing, outgoingId, type Message, type OutgoingMessage } from './envelope.js';
import { ClientError, closedError } from './errors.js';
import { CompiledFilter, type MessageFilter } from './filter.js';
import { newMessageId } from './ids.js';
import type { Outbox, Sending } from './outbox.js';
import type { Rest } from './rest.js';
import { refusesMessage, type RestCarrier } from './rest-carrier.js';
import type { ConnectOptions, Settings } from './options.js';
import { sseSubscribe } from './sse-subscription.js';
import type { MessageHandler, Subscription } from './subscription.js';
import type { Tokens } from './tokens.js';

export interface SessionEvents {
  /** Connected: queued messages are on their way. */
  online(): void;
  /** The connection was lost or could not be made; the session tries again. */
  offline(error: Error | null): void;
  /** Something the application should know: refused credentials, a refused client id, a refused subscription, a queue file fault. */
  error(error: ClientError): void;
  /** The server refused a queued message for good; it left the queue. */
  rejected(id: string, error: ClientError): void;
  /**
   * A message left unsent because the queue was full: the new one (`error.code`
   * NITROGEN_CLIENT_QUEUE_FULL, `queue.whenFull: 'reject'`) or the oldest, dropped for it
   * (NITROGEN_CLIENT_DROPPED, `'drop-oldest'`).
   */
  dropped(id: string, error: ClientError): void;
  /** The queue file had a damaged end (a crash mid-write) that was cut off. */
  warning(message: string): void;
}

export interface QueryOptions {
  order?: 'asc' | 'desc';
  limit?: number;
  cursor?: string;
}

/** The parts a session runs on, made by `connect` for the platform. */
export interface SessionParts {
  settings: Settings;
  rest: Rest;
  tokens: Tokens;
  outbox: Outbox;
  /** The MQTT side, when the session uses one. */
  mqtt: { subscribe(filter: CompiledFilter, handler: MessageHandler): Subscription; close(): void } | null;
  restCarrier: RestCarrier | null;
  /** `connect` of the same platform, for impersonation. */
  connect(options: ConnectOptions): Promise<Session>;
}

/**
 * A principal's session: a device or an app, connected. Sends go through the session's queue
 * and resolve on the server's durable acknowledgement; subscriptions, commands and queries
 * work the same over MQTT or REST and SSE.
 */
export class Session extends Emitter<SessionEvents> {
  readonly id: string;
  private readonly inbox: Inbox;
  private readonly subscriptions = new Set<Subscription>();
  private closed = false;
  /** @internal */ connected = false;

  /** @internal */
  constructor(private readonly parts: SessionParts) {
    super();
    this.id = parts.settings.id;
    this.inbox = new Inbox({
      subscribeToSelf: (handler) => this.subscribe({ to: this.id }, handler),
      send: (m) => this.send(m),
      error: (e) => this.emit('error', e instanceof ClientError ? e : new ClientError('NITROGEN_CLIENT_BAD_OPTIONS', String(e))),
    });
  }

  /** Connected now (MQTT session up, or the last REST request reached the server). */
  get online(): boolean {
    return this.connected;
  }

  /** Messages waiting in the queue: not yet acknowledged by the server. */
  get queued(): number {
    return this.parts.outbox.size;
  }

  /**
   * Queues a message for sending. Returns at once; the result resolves with the message id once
   * the server has durably stored it, and `.queued()` once it is in the queue (with a queue file:
   * written, and fsynced as `queue.fsync` says). Throws at once for an invalid message; when the
   * queue is full the message fails (NITROGEN_CLIENT_QUEUE_FULL) and the `dropped` event says so.
   */
  send<Body>(message: OutgoingMessage<Body>): Sending {
    if (this.closed) throw closedError('send');
    const id = outgoingId(message, newMessageId);
    const json = encodeOutgoing(message, id);
    return this.parts.outbox.enqueue(id, json, checkedSize(json, this.parts.settings.maxMessageBytes));
  }

  /** Resolves once every queued message is acknowledged (or refused or dropped). */
  drained(): Promise<void> {
    return this.parts.outbox.drained();
  }

  /**
   * Calls `handler` with each new message matching `filter` that this principal may receive.
   * Over MQTT (the default when the session has it) or SSE (`via: 'sse'`, and always in the browser).
   */
  onMessage<Body = unknown>(filter: MessageFilter, handler: (message: Message<Body>) => void, options: { via?: 'mqtt' | 'sse' } = {}): Subscription {
    return this.track(this.subscribe(filter, handler as MessageHandler, options.via));
  }

  /** Handles the commands of `type` (or several, or `'*'` for any other) addressed to this principal; what `handler` returns is the reply's body. */
  async onCommand(type: string | string[], handler: CommandHandler): Promise<Subscription> {
    if (this.closed) throw closedError('onCommand');
    return this.track(await this.inbox.handle(Array.isArray(type) ? type : [type], handler));
  }

  /** Sends a command to `to` and resolves with its reply (rejects with NITROGEN_CLIENT_COMMAND_FAILED when the handler failed). */
  command<Reply = unknown>(to: string, type: string, body?: unknown, options: { timeoutMs?: number; tags?: string[] } = {}): Promise<Message<Reply>> {
    if (this.closed) return Promise.reject(closedError('command'));
    return this.inbox.command({ to, type, body, ...(options.tags ? { tags: options.tags } : {}) }, options.timeoutMs ?? this.parts.settings.commandTimeoutMs) as Promise<Message<Reply>>;
  }

  /** One page of stored messages (`GET /messages`): the ones this principal may view. */
  query<Body = unknown>(filter: MessageFilter = {}, options: QueryOptions = {}): Promise<{ messages: Message<Body>[]; next: string | null }> {
    const params = new URLSearchParams(new CompiledFilter(filter).query());
    if (options.order) params.set('order', options.order);
    if (options.limit !== undefined) params.set('limit', String(options.limit));
    if (options.cursor) params.set('cursor', options.cursor);
    const qs = params.toString();
    return this.parts.rest.call('GET', `/messages${qs ? `?${qs}` : ''}`);
  }

  /** Every stored message matching `filter`, page after page. */
  async *messages<Body = unknown>(filter: MessageFilter = {}, options: Omit<QueryOptions, 'cursor'> = {}): AsyncGenerator<Message<Body>> {
    let cursor: string | undefined;
    do {
      const page = await this.query<Body>(filter, { ...options, cursor });
      yield* page.messages;
      cursor = page.next ?? undefined;
    } while (cursor);
  }

  /**
   * The session's own access token and when it expires, renewed first if it is due: for a tool
   * that keeps it instead of the secret, as the CLI's `nitrogen login` does. Treat it as a secret.
   */
  async accessToken(): Promise<{ token: string; expiresAt: string | null }> {
    const { token, expiresAt } = await this.parts.tokens.grant();
    return { token, expiresAt: expiresAt === null ? null : new Date(expiresAt).toISOString() };
  }

  /** An access token for `id`, as this principal (which needs `impersonate` on it). */
  async impersonationToken(id: string): Promise<string> {
    const answer = await this.parts.rest.call<{ accessToken: string }>('POST', `/principals/${encodeURIComponent(id)}/impersonate`);
    return answer.accessToken;
  }

  /**
   * A session as `id`, which this principal holds `impersonate` on: a service acting for a
   * device. It runs on an impersonation token, renewed through this session before it expires.
   */
  async impersonate(id: string, options: Partial<Omit<ConnectOptions, 'id' | 'secret' | 'accessToken' | 'renewToken'>> = {}): Promise<Session> {
    const s = this.parts.settings;
    const accessToken = await this.impersonationToken(id);
    return this.parts.connect({ url: s.url, mqtt: s.mqtt, transport: s.transport, ...options, id, accessToken, renewToken: () => this.impersonationToken(id) });
  }

  /** Registers principals (needs `admin`); each comes back with its secret, shown only this once. */
  async register(principals: Array<{ type: 'device' | 'app' | 'user'; id?: string; name?: string; tags?: string[]; password?: string }>): Promise<Array<{ principal: { id: string; type: string }; secret?: string }>> {
    const answer = await this.parts.rest.call<{ principals: Array<{ principal: { id: string; type: string }; secret?: string }> }>('POST', '/principals', principals);
    return answer.principals;
  }

  /** Any other REST call, with the session's token: resolves with the JSON answer, rejects with the server's error code. */
  request<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    return this.parts.rest.call<T>(method, path, body);
  }

  /**
   * Ends the session: subscriptions, the connection (MQTT DISCONNECT). Messages not yet
   * acknowledged fail with NITROGEN_CLIENT_CLOSED; with a queue file they stay in it and go
   * with the next session. Wait for `drained()` first to send everything.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.inbox.close();
    await Promise.all([...this.subscriptions].map((s) => s.close()));
    this.parts.mqtt?.close();
    this.parts.restCarrier?.close();
    await this.parts.outbox.close();
    this.connected = false;
  }

  /** @internal */ handle = {
    online: () => {
      this.connected = true;
      this.emit('online');
    },
    offline: (error: Error | null) => {
      const was = this.connected;
      this.connected = false;
      if (was || error) this.emit('offline', error);
    },
    error: (error: ClientError) => this.emit('error', error),
    warning: (message: string) => this.emit('warning', message),
    rejected: (id: string, error: ClientError) => this.emit('rejected', id, error),
    dropped: (id: string, error: ClientError) => this.emit('dropped', id, error),
    /** The MQTT connection closed with this message the oldest in flight and nothing acknowledged: ask REST whether the server refuses it. */
    suspect: async (message: Sending) => {
      try {
        await this.parts.rest.post('/messages', message.json);
        this.parts.outbox.delivered(message);
      } catch (err) {
        if (refusesMessage(err)) this.parts.outbox.refused(message, err);
      }
    },
  };

  private subscribe(filter: MessageFilter, handler: MessageHandler, via?: 'mqtt' | 'sse'): Subscription {
    if (this.closed) throw closedError('onMessage');
    const compiled = new CompiledFilter(filter);
    const s = this.parts.settings;
    if (this.parts.mqtt && via !== 'sse') return this.parts.mqtt.subscribe(compiled, handler);
    return sseSubscribe(this.parts.rest, compiled, handler, {
      backoff: s.backoff,
      resetAfterMs: s.resetAfterMs,
      maxEventBytes: s.maxEventBytes,
      // The server or the network ended the stream; one that broke the protocol is worth telling.
      onInterrupted: (error) => error instanceof ClientError && error.code === 'NITROGEN_CLIENT_PROTOCOL' && this.emit('error', error),
      onRefused: (error) => this.emit('error', error),
    });
  }

  private track(subscription: Subscription): Subscription {
    this.subscriptions.add(subscription);
    return {
      ready: subscription.ready,
      close: async () => {
        this.subscriptions.delete(subscription);
        await subscription.close();
      },
    };
  }
}
