import { Aedes, type AedesPublishPacket, type AuthenticateError, type Client, type PublishPacket, type Subscription } from 'aedes';
import { createServer, type Server } from 'node:net';
import { Gauge, type Registry as MetricsRegistry } from 'prom-client';
import type { Authenticator } from '../../core/authenticator.js';
import type { MessageBus, Origin } from '../../core/bus.js';
import type { Endpoints } from '../../core/endpoints.js';
import { NitrogenError, isNitrogenError } from '../../core/errors.js';
import type { Ingestor } from '../../core/ingest.js';
import { endpointUrl, listen } from '../../core/listen.js';
import type { Logger } from '../../core/logger.js';
import { encodeMessage, type Message } from '../../core/message.js';
import type { PrincipalEvents } from '../../core/principal-events.js';
import type { Identity } from '../../core/ports/identity.js';
import type { Principal } from '../../core/ports/principal.js';
import type { Presence } from '../../core/presence.js';
import { commandsTopic, messagesTopic, parsePublishTopic, parseSubscription, topicOwner, type PublishTopic } from './topics.js';

export interface MqttOptions {
  port: number;
  host?: string;
  /** URL advertised by /headwaiter; defaults to mqtt://host:port. */
  publicUrl?: string;
  /** Connections beyond this are refused (CONNACK 3, server unavailable): memory stays bounded. */
  maxConnections: number;
}

export interface MqttDeps {
  identity: Identity;
  authenticator: Authenticator;
  ingestor: Ingestor;
  bus: MessageBus;
  endpoints: Endpoints;
  presence: Presence;
  principalEvents: PrincipalEvents;
  logger: Logger;
  metrics: MetricsRegistry;
  host: string;
}

/** The part of aedes's persistence that knows the QoS 2 packets awaiting PUBREL. */
interface IncomingPackets {
  incomingGetPacket(client: Client, packet: PublishPacket): Promise<unknown>;
}

/** What an MQTT commit tells the fan-out: the topic aedes forwards itself, and the retain flag. */
interface MqttOriginTag {
  forwardedTopic?: string;
  retain: boolean;
}

// MQTT 3.1.1 §3.2.2.3 CONNACK return codes.
const SERVER_UNAVAILABLE = 3;
const BAD_USERNAME_OR_PASSWORD = 4;
const NOT_AUTHORIZED = 5;

function refusal(code: number, message: string): AuthenticateError {
  return Object.assign(new Error(message), { returnCode: code }) as AuthenticateError;
}

/** Rate limits and a busy password hasher are the server's state, not the client's credentials. */
const RETRY_LATER = new Set(['NITROGEN_ERR_RATE_LIMITED', 'NITROGEN_ERR_OVERLOADED', 'NITROGEN_ERR_UNAVAILABLE']);

function connackCode(code: string): number {
  if (RETRY_LATER.has(code)) return SERVER_UNAVAILABLE;
  return code === 'NITROGEN_ERR_PRINCIPAL_DISABLED' ? NOT_AUTHORIZED : BAD_USERNAME_OR_PASSWORD;
}

/**
 * The MQTT 3.1.1 transport on aedes. Each aedes hook is wired to the Identity port and the
 * ingestion pipeline: a QoS 1 PUBACK leaves only after the store commit, because aedes sends
 * it once `authorizePublish` calls back, and that hook commits first.
 */
export class MqttTransport {
  private broker?: Aedes;
  private server?: Server;
  private readonly principals = new WeakMap<Client, Principal>();
  /** For a connection opened with an impersonation token: the impersonator, whose revocation ends it too. */
  private readonly actors = new WeakMap<Client, string>();
  private readonly lastTopic = new WeakMap<Client, { topic: string; parsed: PublishTopic | null }>();
  /** Open connections per principal, to end them when the principal is revoked. */
  private readonly sessions = new Map<string, Set<Client>>();
  /** Connections authenticated by an access token end when the token expires. */
  private readonly tokenExpiry = new Map<Client, number>();
  private expiryTimer?: NodeJS.Timeout;
  private readonly onRevoked = (id: string, reason: string) => {
    for (const client of this.sessions.get(id) ?? []) {
      this.deps.logger.info({ principal: id, reason }, 'closing MQTT connection of a revoked principal');
      client.close();
    }
  };
  private unsubscribe?: () => void;
  private readonly connections: Gauge;
  private connected = 0;

  constructor(private readonly options: MqttOptions, private readonly deps: MqttDeps) {
    this.connections = new Gauge({ name: 'nitrogen_mqtt_connections', help: 'Connected MQTT clients', registers: [deps.metrics] });
  }

  async start(): Promise<void> {
    const broker = await Aedes.createBroker({
      preConnect: (_client, _packet, done) => {
        done(this.connected >= this.options.maxConnections ? refusal(SERVER_UNAVAILABLE, 'too many connections') : null, this.connected < this.options.maxConnections);
      },
      authenticate: (client, username, password, done) => this.authenticate(client, username, password, done),
      authorizePublish: (client, packet, done) => this.authorizePublish(client, packet, done),
      authorizeSubscribe: (client, sub, done) => done(null, this.authorizeSubscribe(client, sub)),
      authorizeForward: (client, packet) => this.authorizeForward(client, packet),
    });
    this.broker = broker;
    broker.on('client', (client) => {
      this.connected++;
      this.connections.inc();
      for (const id of this.sessionIds(client)) {
        let set = this.sessions.get(id);
        if (!set) this.sessions.set(id, (set = new Set()));
        set.add(client);
      }
    });
    broker.on('clientDisconnect', (client) => {
      this.connected--;
      this.connections.dec();
      this.tokenExpiry.delete(client);
      for (const id of this.sessionIds(client)) {
        const set = this.sessions.get(id);
        set?.delete(client);
        if (set?.size === 0) this.sessions.delete(id);
      }
    });
    this.deps.principalEvents.on('revoked', this.onRevoked);
    this.expiryTimer = setInterval(() => {
      const now = Date.now();
      for (const [client, expires] of this.tokenExpiry) if (expires <= now) client.close();
    }, 5000);
    this.expiryTimer.unref();
    broker.on('clientError', (client, err) => this.deps.logger.debug({ clientId: client.id, err: err.message }, 'mqtt client error'));
    this.unsubscribe = this.deps.bus.subscribe((messages, origin) => this.forward(messages, origin));

    const server = createServer(broker.handle);
    this.server = server;
    const host = this.options.host ?? this.deps.host;
    const port = await listen(server, this.options.port, host);
    this.deps.endpoints.mqtt = this.options.publicUrl ?? endpointUrl('mqtt', host, port);
    this.deps.logger.info({ endpoint: this.deps.endpoints.mqtt }, 'MQTT listening');
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    this.deps.principalEvents.off('revoked', this.onRevoked);
    clearInterval(this.expiryTimer);
    // Stop accepting, then close the connected clients (server.close() waits for them to end);
    // commits already running finish in the core's group commit.
    const server = this.server;
    const closed = server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    const broker = this.broker;
    if (broker) await new Promise<void>((resolve) => broker.close(() => resolve()));
    await closed;
  }

  /** The principals whose revocation closes this connection: its own, and its impersonator's. */
  private sessionIds(client: Client): string[] {
    const principal = this.principals.get(client);
    if (!principal) return [];
    const actor = this.actors.get(client);
    return actor === undefined ? [principal.id] : [principal.id, actor];
  }

  private authenticate(client: Client, username: string | undefined, password: Buffer | undefined, done: (err: AuthenticateError | null, ok: boolean | null) => void): void {
    if (!username || !password) {
      done(refusal(BAD_USERNAME_OR_PASSWORD, 'username and password are required'), false);
      return;
    }
    const remoteAddress = (client.conn as { remoteAddress?: string }).remoteAddress;
    this.deps.authenticator.password(username, password.toString('utf8'), { remoteAddress }).then(
      ({ principal, expiresAt, actor }) => {
        this.principals.set(client, principal);
        if (actor !== undefined) this.actors.set(client, actor);
        if (expiresAt !== null) this.tokenExpiry.set(client, expiresAt);
        this.deps.presence.seenNow(principal.id);
        done(null, true);
      },
      (err: unknown) => {
        const code = isNitrogenError(err) ? err.code : 'NITROGEN_ERR_INTERNAL';
        // A flood of refusals is logged once by the limiter, not once per attempt.
        const level = RETRY_LATER.has(code) ? 'debug' : 'info';
        this.deps.logger[level]({ clientId: client.id, username, code }, 'mqtt connect refused');
        done(refusal(connackCode(code), (err as Error).message), false);
      },
    );
  }

  /**
   * Validates, authorizes and durably commits a PUBLISH before aedes acknowledges it. An error
   * closes the connection: MQTT 3.1.1 has no negative PUBACK, and a refused message is never stored.
   */
  private authorizePublish(client: Client | null, packet: PublishPacket, done: (err?: Error | null) => void): void {
    const principal = client && this.principals.get(client);
    if (!principal) {
      done(new Error('not authenticated'));
      return;
    }
    const fail = (err: unknown): void => {
      const code = this.deps.ingestor.rejected('mqtt', err);
      this.deps.logger.info({ clientId: client.id, principal: principal.id, topic: packet.topic, code, reason: (err as Error).message }, 'mqtt publish refused; closing connection');
      done(err as Error);
    };
    try {
      const topic = this.parseTopic(client, packet.topic);
      if (!topic) throw new NitrogenError('NITROGEN_ERR_FORBIDDEN', `cannot publish to '${packet.topic}'`);
      const own = topic.principal === principal.id;
      if (topic.kind !== 'command' && !own) {
        throw new NitrogenError('NITROGEN_ERR_SENDER_MISMATCH', `'${principal.id}' may not publish as '${topic.principal}'`);
      }
      // [MQTT-3.3.1-10] an empty retained PUBLISH clears the retained message; nothing to store.
      if (packet.retain && packet.payload.length === 0 && own) {
        done(null);
        return;
      }
      if (packet.qos === 2 && packet.dup) {
        // A QoS 2 resend of a packet already stored: aedes answers it with PUBREC alone.
        (this.broker as unknown as { persistence: IncomingPackets }).persistence.incomingGetPacket(client, packet).then(() => done(null), () => this.ingestPublish(principal, topic, packet, done, fail));
        return;
      }
      this.ingestPublish(principal, topic, packet, done, fail);
    } catch (err) {
      fail(err);
    }
  }

  private ingestPublish(principal: Principal, topic: PublishTopic, packet: PublishPacket, done: (err?: Error | null) => void, fail: (err: unknown) => void): void {
    try {
      const text = packet.payload.toString('utf8');
      const payload = this.deps.ingestor.parse(text);
      // Commands are not retained: a retained command would run again on every reconnect.
      if (topic.kind === 'command') packet.retain = false;
      const tag: MqttOriginTag = { retain: packet.retain };
      const options = {
        transport: 'mqtt',
        type: topic.kind === 'envelopes' ? undefined : topic.type,
        to: topic.kind === 'command' ? topic.principal : undefined,
        originTag: tag,
      };
      const messages = topic.kind === 'envelopes'
        ? this.deps.ingestor.prepare(principal, Array.isArray(payload) ? payload : [payload], options)
        : this.deps.ingestor.prepareBody(principal, text, payload, { ...options, type: topic.type });
      // One envelope: rewrite the packet so aedes forwards (and retains) the envelope itself.
      // Several: park the packet on a topic no one can subscribe to; the bus delivers each.
      if (messages.length === 1) {
        const m = messages[0]!;
        packet.topic = topic.kind === 'command' ? commandsTopic(m.to!, m.type) : messagesTopic(m.from, m.type);
        packet.payload = Buffer.from(encodeMessage(m));
        tag.forwardedTopic = packet.topic;
      } else {
        packet.topic = '$nitrogen/ingested';
        packet.retain = false;
      }
      this.deps.ingestor.commit(messages, options).then(() => done(null), fail);
    } catch (err) {
      fail(err);
    }
  }

  /** A device publishes to the same topic again and again: parse it once per client. */
  private parseTopic(client: Client, topic: string): PublishTopic | null {
    const cached = this.lastTopic.get(client);
    if (cached?.topic === topic) return cached.parsed;
    const parsed = parsePublishTopic(topic);
    this.lastTopic.set(client, { topic, parsed });
    return parsed;
  }

  private authorizeSubscribe(client: Client, sub: Subscription): Subscription | null {
    const principal = this.principals.get(client);
    const scope = parseSubscription(sub.topic);
    if (!principal || !scope) return null;
    // A wildcard id is allowed: authorizeForward then lets through only what the principal may read.
    if (scope.principal === null || scope.principal === principal.id) return sub;
    const identity = this.deps.identity;
    if (scope.messages && !identity.authorize(principal, 'subscribe', scope.principal)) return null;
    if (scope.commands && !identity.authorize(principal, 'impersonate', scope.principal)) return null;
    return sub;
  }

  /** Checked at every delivery, so a revoked permission stops live subscriptions at once. */
  private authorizeForward(client: Client, packet: AedesPublishPacket): AedesPublishPacket | null {
    const principal = this.principals.get(client);
    const owner = topicOwner(packet.topic);
    if (!principal || !owner) return null;
    if (owner.principal === principal.id) return packet;
    const action = owner.commands ? 'impersonate' : 'subscribe';
    return this.deps.identity.authorize(principal, action, owner.principal) ? packet : null;
  }

  /** Publishes committed envelopes to MQTT subscribers, except what aedes forwards itself. */
  private forward(messages: readonly Message[], origin: Origin): void {
    const broker = this.broker;
    if (!broker || broker.closed) return;
    const tag = origin.transport === 'mqtt' ? (origin.tag as MqttOriginTag) : undefined;
    for (const m of messages) {
      // Encoded only when needed: for MQTT telemetry aedes already forwards the envelope itself.
      let payload: Buffer | undefined;
      const encoded = () => (payload ??= Buffer.from(encodeMessage(m)));
      this.publish(messagesTopic(m.from, m.type), encoded, tag);
      if (m.to !== undefined) this.publish(commandsTopic(m.to, m.type), encoded, tag);
    }
  }

  private publish(topic: string, encoded: () => Buffer, tag: MqttOriginTag | undefined): void {
    if (topic === tag?.forwardedTopic) return;
    const payload = encoded();
    const retain = tag?.retain === true && topic.includes('/messages/');
    this.broker!.publish({ cmd: 'publish', topic, payload, qos: 1, retain, dup: false }, (err) => {
      if (err) this.deps.logger.warn({ err, topic }, 'mqtt fan-out failed');
    });
  }
}
