// First: it must run before aedes loads mqtt-packet (packet-loggers.ts says why).
import './packet-loggers.js';
import { Aedes, type Client } from 'aedes';
import { createServer, type Server, type Socket } from 'node:net';
import type { Registry as MetricsRegistry } from 'prom-client';
import type { Authenticator } from '../../core/authenticator.js';
import type { MessageBus } from '../../core/bus.js';
import type { NitrogenConfig } from '../../core/config.js';
import { inject, injectable, type InjectionToken } from '../../core/di.js';
import { parseDuration } from '../../core/duration.js';
import type { Endpoints } from '../../core/endpoints.js';
import type { Ingestor } from '../../core/ingest.js';
import { endpointUrl, listen } from '../../core/listen.js';
import type { Logger } from '../../core/logger.js';
import type { Identity } from '../../core/ports/identity.js';
import type { Presence } from '../../core/presence.js';
import type { PrincipalEvents } from '../../core/principal-events.js';
import { Tokens } from '../../core/tokens.js';
import { adoptClient } from './aedes-seam.js';
import { ConnectHandler } from './connect.js';
import { FanOut } from './fan-out.js';
import { MqttMetrics, type ConnectRefusal } from './metrics.js';
import type { MqttOptions } from './options.js';
import { PublishHandler } from './publish.js';
import { RetainedQuota } from './retained.js';
import { SessionStore } from './session-store.js';
import { Sessions } from './sessions.js';
import { SlowReaders } from './slow-readers.js';
import { SubscribeHandler } from './subscribe.js';

/** What the MQTT transport needs from the core, injected by the plugin's container. */
@injectable()
export class MqttDeps {
  /** The server's `host`, where the transport listens unless its own option says otherwise. */
  readonly host: string;

  constructor(
    @inject(Tokens.Identity) readonly identity: Identity,
    @inject(Tokens.Authenticator) readonly authenticator: Authenticator,
    @inject(Tokens.Ingestor) readonly ingestor: Ingestor,
    @inject(Tokens.Bus) readonly bus: MessageBus,
    @inject(Tokens.Endpoints) readonly endpoints: Endpoints,
    @inject(Tokens.Presence) readonly presence: Presence,
    @inject(Tokens.PrincipalEvents) readonly principalEvents: PrincipalEvents,
    /** The plugin instance's logger. */
    @inject(Tokens.Logger) readonly logger: Logger,
    @inject(Tokens.Metrics) readonly metrics: MetricsRegistry,
    @inject(Tokens.Config) config: NitrogenConfig,
  ) {
    this.host = config.host;
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
 * committed messages (fan-out.ts). This file wires them to aedes and a TCP server.
 */
@injectable()
export class MqttTransport {
  private broker?: Aedes;
  private server?: Server;
  private readonly metrics: MqttMetrics;
  private readonly store: SessionStore;
  private readonly sessions: Sessions;
  private readonly retained: RetainedQuota;
  private readonly slowReaders: SlowReaders;
  private unsubscribe?: () => void;
  /** Open sockets, to end at stop those aedes does not know yet (no CONNECT so far). */
  private readonly sockets = new Set<Socket>();
  private readonly onRevoked = (id: string, reason: string) => {
    this.sessions.revoke(id, reason);
    // A deleted principal's retained messages go with it; an id registered again starts empty.
    if (reason === 'deleted') for (const topic of this.retained.take(id)) this.clearRetained(topic);
  };

  constructor(@inject(MqttOptionsToken) private readonly options: MqttOptions, @inject(MqttDeps) private readonly deps: MqttDeps) {
    const limitHit = this.limitHit.bind(this);
    this.metrics = new MqttMetrics(deps.metrics);
    this.store = new SessionStore(options, limitHit);
    this.sessions = new Sessions(this.store, options.maxSessions, this.metrics, deps.logger);
    this.retained = new RetainedQuota(options.maxRetainedMessages, options.maxRetainedBytes, limitHit);
    this.slowReaders = new SlowReaders(options.maxBufferedBytes, parseDuration(options.slowReaderGrace), this.metrics, deps.logger);
  }

  async start(): Promise<void> {
    const { deps, options, sessions } = this;
    const connect = new ConnectHandler({ authenticator: deps.authenticator, presence: deps.presence, sessions, logger: deps.logger });
    const publish = new PublishHandler({ ingestor: deps.ingestor, sessions, store: this.store, retained: this.retained, logger: deps.logger });
    const subscribe = new SubscribeHandler({ identity: deps.identity, sessions, maxSubscriptions: options.maxSubscriptions, metrics: this.metrics, logger: deps.logger });
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
    broker.on('connackSent', (packet) => {
      if (packet.returnCode) this.metrics.connectsRefused.inc({ reason: REFUSALS[packet.returnCode] ?? 'unavailable' });
    });
    // Client mistakes and hostile peers, not server faults: debug.
    broker.on('clientError', (client, err) => deps.logger.debug({ clientId: client.id, err: err.message }, 'mqtt client error'));
    broker.on('connectionError', (_client, err) => deps.logger.debug({ err: err.message }, 'mqtt connection error before CONNECT'));
    sessions.start();
    deps.principalEvents.on('revoked', this.onRevoked);
    const fanOut = new FanOut(broker, deps.logger);
    this.unsubscribe = deps.bus.subscribe((messages, origin) => fanOut.forward(messages, origin));

    const server = createServer((conn) => this.accept(broker, conn));
    // Counted before any byte is read, authenticated or not: the cap holds against a flood.
    server.maxConnections = options.maxConnections;
    server.on('drop', () => this.metrics.connectsRefused.inc({ reason: 'unavailable' }));
    this.server = server;
    const host = options.host ?? deps.host;
    const port = await listen(server, options.port, host);
    deps.endpoints.mqtt = options.publicUrl ?? endpointUrl('mqtt', host, port);
    deps.logger.info({ endpoint: deps.endpoints.mqtt }, 'MQTT listening');
  }

  private accept(broker: Aedes, conn: Socket): Client {
    const { options, slowReaders, sockets } = this;
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
    // Stop accepting, then close the connected clients (server.close() waits for them to end);
    // commits already running finish in the core's group commit.
    const server = this.server;
    const closed = server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    const broker = this.broker;
    if (broker) await new Promise<void>((resolve) => broker.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }

  private limitHit(limit: Parameters<MqttMetrics['limitHit']>[0]): void {
    this.metrics.limitHit(limit);
  }

  private clearRetained(topic: string): void {
    // [MQTT-3.3.1-10] an empty retained message clears the topic.
    this.store.storeRetained({ topic, payload: EMPTY }).catch((err: unknown) => this.deps.logger.warn({ err, topic }, 'could not clear a retained message'));
  }
}
