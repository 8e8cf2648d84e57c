// First: it must run before aedes loads mqtt-packet (packet-loggers.ts says why).
import './packet-loggers.js';
import { Aedes, type Client } from 'aedes';
import type { Duplex } from 'node:stream';
import type { Registry as MetricsRegistry } from 'prom-client';
import type { Authenticator } from '../../core/authenticator.js';
import type { MessageBus } from '../../core/bus.js';
import type { NitrogenConfig } from '../../core/config.js';
import { inject, injectable, type InjectionToken } from '../../core/di.js';
import { parseDuration } from '../../core/duration.js';
import type { Endpoints } from '../../core/endpoints.js';
import type { Ingestor } from '../../core/ingest.js';
import type { Devices } from '../../core/devices.js';
import { DELTA } from '../../core/device-state.js';
import { encodeMessage, newMessageId } from '../../core/message.js';
import { TlsFiles } from '../../core/tls.js';
import type { Logger } from '../../core/logger.js';
import type { Cluster, InstanceIdentity } from '../../core/ports/cluster.js';
import type { Identity } from '../../core/ports/identity.js';
import type { Presence } from '../../core/presence.js';
import type { PrincipalEvents } from '../../core/principal-events.js';
import { Tokens } from '../../core/tokens.js';
import { adoptClient, clientOf } from './aedes-seam.js';
import { ConnectHandler } from './connect.js';
import { FanOut } from './fan-out.js';
import { Listeners, type Peer } from './listeners.js';
import { MqttMetrics, type ConnectRefusal } from './metrics.js';
import type { MqttOptions } from './options.js';
import { PublishHandler } from './publish.js';
import { RetainedQuota, SharedRetainedQuota, type RetainedLimiter } from './retained.js';
import { SessionStore } from './session-store.js';
import { SharedSessionStore, SUBSCRIPTIONS_CHANGED } from './shared-session-store.js';
import { CLIENT_CONNECTED, Sessions } from './sessions.js';
import { SlowReaders } from './slow-readers.js';
import { SubscribeHandler } from './subscribe.js';
import { commandsTopic, filterMatches } from './topics.js';

/** What the MQTT transport needs from the core, injected by the plugin's container. */
@injectable()
export class MqttDeps {
  /** The server's `host`, where the transport listens unless its own option says otherwise. */
  readonly host: string;
  readonly roles: ReadonlySet<string>;

  constructor(
    @inject(Tokens.Identity) readonly identity: Identity,
    @inject(Tokens.Authenticator) readonly authenticator: Authenticator,
    @inject(Tokens.Ingestor) readonly ingestor: Ingestor,
    @inject(Tokens.Bus) readonly bus: MessageBus,
    @inject(Tokens.Endpoints) readonly endpoints: Endpoints,
    @inject(Tokens.Presence) readonly presence: Presence,
    @inject(Tokens.PrincipalEvents) readonly principalEvents: PrincipalEvents,
    @inject(Tokens.Devices) readonly devices: Devices,
    /** The plugin instance's logger. */
    @inject(Tokens.Logger) readonly logger: Logger,
    @inject(Tokens.Metrics) readonly metrics: MetricsRegistry,
    @inject(Tokens.Cluster) readonly cluster: Cluster,
    @inject(Tokens.Instance) readonly instance: InstanceIdentity,
    @inject(Tokens.Config) config: NitrogenConfig,
  ) {
    this.host = config.host;
    this.roles = new Set(config.cluster.roles);
  }
}

/** The mqtt plugin's options, as its container holds them for the transport. */
export const MqttOptionsToken = Symbol('nitrogen.mqtt.Options') as InjectionToken<MqttOptions>;

/** CONNACK return codes (MQTT 3.1.1 §3.2.2.3) as the refusal metric names them. */
const REFUSALS: Record<number, ConnectRefusal> = { 1: 'protocol', 2: 'identifier', 3: 'unavailable', 4: 'credentials', 5: 'not-authorized' };
const EMPTY = Buffer.alloc(0);

/**
 * The MQTT 3.1.1 transport on aedes: one handler per packet type (connect.ts, publish.ts,
 * subscribe.ts), the sessions and client ids (sessions.ts, session-store.ts), the caps
 * (slow-readers.ts, retained.ts, and the packet limits in aedes-seam.ts) and the fan-out of
 * committed messages (fan-out.ts). This file wires them to aedes and its listeners (listeners.ts).
 */
@injectable()
export class MqttTransport {
  private broker?: Aedes;
  private listeners?: Listeners;
  private tlsFiles?: TlsFiles;
  /** How each connection reached the broker, by its stream (aedes' `client.conn`). */
  private readonly peers = new WeakMap<Duplex, Peer>();
  private readonly metrics: MqttMetrics;
  private readonly store: SessionStore;
  private readonly shared?: SharedSessionStore;
  private readonly sessions: Sessions;
  private readonly retained: RetainedLimiter;
  private readonly slowReaders: SlowReaders;
  private unsubscribe?: () => void;
  /** Open connections, to end at stop those aedes does not know yet (no CONNECT so far). */
  private readonly sockets = new Set<Duplex>();
  private readonly onRevoked = (id: string, reason: string, local: boolean) => {
    this.sessions.revoke(id, reason, local);
    // A deleted principal's retained messages go with it; an id registered again starts empty.
    // Shared ones are cleared once, by the instance where it was deleted.
    if (reason !== 'deleted' || (this.shared && !local)) return;
    const taken = this.retained.take(id);
    if (Array.isArray(taken)) for (const topic of taken) this.clearRetained(topic);
    else
      taken.then(
        (topics) => topics.forEach((topic) => this.clearRetained(topic)),
        (err: unknown) => this.deps.logger.warn({ err }, 'could not clear retained messages'),
      );
  };

  constructor(
    @inject(MqttOptionsToken) private readonly options: MqttOptions,
    @inject(MqttDeps) private readonly deps: MqttDeps,
  ) {
    const limitHit = this.limitHit.bind(this);
    this.metrics = new MqttMetrics(deps.metrics);
    const { cluster, instance } = deps;
    if (cluster.sessions) {
      // Several instances: sessions, client ids and retained messages in the cluster's shared state.
      const shared = new SharedSessionStore(options, limitHit, cluster.sessions, cluster, `n:${instance.id}:${instance.run}`, deps.logger);
      this.store = this.shared = shared;
      this.sessions = new Sessions(shared, options.maxSessions, this.metrics, deps.logger, { state: cluster.sessions, store: shared, cluster, connectionPrefix: `${instance.id}:${instance.run}` });
      this.retained = new SharedRetainedQuota(cluster.sessions, options.maxRetainedMessages, options.maxRetainedBytes, limitHit);
    } else {
      this.store = new SessionStore(options, limitHit);
      this.sessions = new Sessions(this.store, options.maxSessions, this.metrics, deps.logger);
      this.retained = new RetainedQuota(options.maxRetainedMessages, options.maxRetainedBytes, limitHit);
    }
    this.metrics.countPersistentSubscriptions(deps.metrics, async () => (await this.store.countOffline()).subsCount);
    this.slowReaders = new SlowReaders(options.maxBufferedBytes, parseDuration(options.slowReaderGrace), this.metrics, deps.logger);
  }

  async start(): Promise<void> {
    const { deps, options, sessions } = this;
    const connect = new ConnectHandler({ authenticator: deps.authenticator, certificates: deps.devices.certificates, peers: this.peers, presence: deps.presence, sessions, logger: deps.logger });
    const publish = new PublishHandler({ ingestor: deps.ingestor, sessions, store: this.store, retained: this.retained, logger: deps.logger, ingestion: deps.roles.has('ingestion'), clustered: this.shared !== undefined });
    const subscribe = new SubscribeHandler({ identity: deps.identity, sessions, maxSubscriptions: options.maxSubscriptions, metrics: this.metrics, logger: deps.logger, roles: deps.roles });
    const broker = await Aedes.createBroker({
      persistence: this.store,
      // No delivery queue in mqemitter: with a concurrency limit, deliveries beyond it waited in an
      // unbounded array, released by a recursion one stack frame per message deep once they
      // could go (a stalled reader's 5,000 commands overflowed the stack and ended the process).
      // Deliveries never wait for a socket (aedes-seam.ts), so none needs the queue.
      concurrency: 0,
      preConnect: (client, packet, done) => connect.preConnect(client, packet, done),
      authenticate: (client, username, password, done) => connect.connect(client, username, password, done),
      authorizePublish: (client, packet, done) => publish.authorizePublish(client, packet, done),
      authorizeSubscribe: (client, sub, done) => done(null, subscribe.authorizeSubscribe(client, sub)),
      authorizeForward: (client, packet) => subscribe.authorizeForward(client, packet),
    });
    this.broker = broker;
    broker.on('client', () => this.metrics.connections.inc());
    broker.on('clientDisconnect', (client) => {
      this.metrics.connections.dec();
      this.slowReaders.forget(client);
    });
    broker.on('unsubscribe', (topics, client) => subscribe.unsubscribed(client, topics));
    broker.on('clientReady', (client) => this.ready(client));
    broker.on('subscribe', (subscriptions, client) =>
      this.sendDelta(
        client,
        subscriptions.map((s) => s.topic),
      ),
    );
    broker.on('connackSent', (packet) => {
      if (packet.returnCode) this.metrics.connectsRefused.inc({ reason: REFUSALS[packet.returnCode] ?? 'unavailable' });
    });
    // Client mistakes and hostile peers, not server faults: debug.
    broker.on('clientError', (client, err) => deps.logger.debug({ clientId: client.id, err: err.message }, 'mqtt client error'));
    broker.on('connectionError', (_client, err) => deps.logger.debug({ err: err.message }, 'mqtt connection error before CONNECT'));
    sessions.start();
    deps.principalEvents.on('revoked', this.onRevoked);
    const fanOut = new FanOut(broker, deps.logger, this.shared && deps.instance);
    this.unsubscribe = deps.bus.subscribe((messages, origin) => fanOut.forward(messages, origin));
    if (this.shared) this.joinCluster(broker, this.shared);

    if (options.tls) this.tlsFiles = new TlsFiles(options.tls, deps.logger, 'mqtt');
    this.listeners = new Listeners(
      options,
      this.tlsFiles,
      (conn, peer) => this.accept(broker, conn, peer),
      () => this.metrics.connectsRefused.inc({ reason: 'unavailable' }),
    );
    const host = options.host ?? deps.host;
    const endpoints = await this.listeners.start(host);
    Object.assign(deps.endpoints, endpoints);
    deps.endpoints.mqtt = options.publicUrl ?? endpoints.mqtt ?? endpoints.mqtts;
    deps.logger.info({ endpoints }, 'MQTT listening');
  }

  /** A connection accepted (CONNACK 0): its principal is connected, and may be owed its twin's delta (restored subscriptions). */
  private ready(client: Client): void {
    const principal = this.sessions.principalOf(client);
    if (!principal) return;
    const restored = Object.keys((client as unknown as { subscriptions?: Record<string, unknown> }).subscriptions ?? {});
    if (restored.length > 0) this.sendDelta(client, restored);
    // Presence is the devices': applications and people come and go without telling anyone.
    if (principal.type !== 'device') return;
    const peer = this.peers.get(client.conn);
    this.deps.presence.connected(principal.id, peer?.remoteAddress === undefined ? { transport: peer?.transport ?? 'mqtt' } : { transport: peer.transport, address: peer.remoteAddress });
    client.conn.once('close', () => {
      if (this.sessions.wasTakenOverElsewhere(client)) return this.deps.presence.movedAway(principal.id);
      // A DISCONNECT packet ends a connection cleanly; anything else loses it (and sends its will).
      const clean = (client as unknown as { _disconnected?: boolean })._disconnected === true;
      this.deps.presence.disconnected(principal.id, clean ? 'disconnected' : 'connection lost');
    });
  }

  /**
   * A device subscribing to its `nitrogen.delta` commands gets, at once and to that connection
   * only, what its desired state holds that its reported state does not (docs/api.md, "Twins").
   */
  private sendDelta(client: Client, filters: readonly string[]): void {
    const principal = this.sessions.principalOf(client);
    if (principal?.type !== 'device') return;
    const topic = commandsTopic(principal.id, DELTA);
    if (!filters.some((filter) => filterMatches(filter, topic))) return;
    this.deps.devices.state.delta(principal.id).then(
      (delta) => {
        if (!delta || client.conn.destroyed) return;
        const now = Date.now();
        const envelope = encodeMessage({ id: newMessageId(now), type: DELTA, from: principal.id, to: principal.id, ts: new Date(now).toISOString(), body: delta });
        client.publish({ cmd: 'publish', topic, payload: Buffer.from(envelope), qos: 1, retain: false, dup: false }, () => {});
      },
      (err: unknown) => this.deps.logger.warn({ err, principal: principal.id }, 'could not read a twin to send its delta'),
    );
  }

  private accept(broker: Aedes, conn: Duplex, peer: Peer): Client {
    const { options, slowReaders, sockets } = this;
    this.peers.set(conn, peer);
    sockets.add(conn);
    conn.once('close', () => sockets.delete(conn));
    return adoptClient(broker.handle(conn), {
      maxConnectBytes: options.maxConnectBytes,
      maxPacketBytes: options.maxPacketBytes,
      // The error closes the connection, and is logged at debug like every client error.
      packetTooLarge: (length, connected) => {
        const limit = connected ? 'maxPacketBytes' : 'maxConnectBytes';
        this.limitHit(limit);
        return new Error(`a packet of ${length} bytes is over the mqtt option ${limit} (${options[limit]})`);
      },
      overBuffered: (client) => slowReaders.isOver(client),
      protocolRefused: () => this.metrics.connectsRefused.inc({ reason: 'protocol' }),
    });
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    this.deps.principalEvents.off('revoked', this.onRevoked);
    this.sessions.stop();
    this.slowReaders.stop();
    this.tlsFiles?.stop();
    // Stop accepting, then close the connected clients (server.close() waits for them to end);
    // commits already running finish in the core's group commit.
    const closed = this.listeners?.stop() ?? Promise.resolve();
    const broker = this.broker;
    if (broker) await new Promise<void>((resolve) => broker.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }

  /** What other instances say about sessions: subscriptions changed, a client id connected there. */
  private joinCluster(broker: Aedes, shared: SharedSessionStore): void {
    const { cluster, logger } = this.deps;
    cluster.onEvent((channel, data) => {
      if (broker.closed) return;
      if (channel === SUBSCRIPTIONS_CHANGED) shared.applyRemote(data);
      else if (channel === CLIENT_CONNECTED) {
        const { clientId, connection } = (data ?? {}) as { clientId?: unknown; connection?: unknown };
        if (typeof clientId === 'string' && typeof connection === 'string') this.sessions.connectedElsewhere(clientOf(broker, clientId), connection);
      }
    });
    cluster.onReconnect?.(() => {
      if (!broker.closed) shared.reload().catch((err: unknown) => logger.warn({ err }, 'could not reload the persistent subscriptions'));
    });
  }

  private limitHit(limit: Parameters<MqttMetrics['limitHit']>[0]): void {
    this.metrics.limitHit(limit);
  }

  private clearRetained(topic: string): void {
    // [MQTT-3.3.1-10] an empty retained message clears the topic.
    this.store.storeRetained({ topic, payload: EMPTY }).catch((err: unknown) => this.deps.logger.warn({ err, topic }, 'could not clear a retained message'));
  }
}
