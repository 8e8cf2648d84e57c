import { chmodSync, mkdirSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { bootstrapAdmin, type AdminSecretSource } from './bootstrap.js';
import { parseConfig, type NitrogenConfig, type NitrogenConfigInput } from './config.js';
import { rootContainer, type DependencyContainer, type InjectionToken } from './di.js';
import { parseDuration } from './duration.js';
import type { Endpoints } from './endpoints.js';
import { NitrogenError } from './errors.js';
import { GroupCommit } from './group-commit.js';
import { OK, brief, reportsHealth, type ComponentHealth, type Health } from './health.js';
import { createLogger, type Logger } from './logger.js';
import type { PluginCatalog, PluginComponents, PluginKind } from './plugin.js';
import { LocalCluster, type Cluster } from './ports/cluster.js';
import type { Lifecycle } from './ports/lifecycle.js';
import type { Sink } from './ports/sink.js';
import type { FeedPosition, Store } from './ports/store.js';
import { planPlugins, withDefaultIdentity, type Plan, type PlannedPlugin } from './preflight.js';
import { problemsError } from './problems.js';
import { registerCoreServices } from './services.js';
import { SinkLeases, partitionOf, type SinkUnit, type UnitCheckpoints } from './sink-leases.js';
import { SinkMetrics, SinkRunner } from './sink-runner.js';
import { BackpressureGate } from './backpressure.js';
import { WorkerSink } from './worker-sink.js';
import { Tokens } from './tokens.js';

export interface ServerOptions {
  /** Built-in plugins by name; the package's `defaultCatalog` holds the shipped adapters. */
  catalog: PluginCatalog;
  logger?: Logger;
  /** Parent container, for embedding; a child of it is used, never it directly. */
  container?: DependencyContainer;
}

interface Started {
  name: string;
  component: Lifecycle;
}

/**
 * A Nitrogen server: checks the whole configuration before anything is written, loads the
 * configured plugins into its own child container, starts them in dependency order (store,
 * registry, identity, presence, sinks, the ingestion pipeline and the sink runners,
 * transports) and stops them in reverse, so transports stop accepting before in-flight
 * commits are finished. `health` says how each component is doing (GET /ready).
 */
export class NitrogenServer {
  /** This server's container: a child of `ServerOptions.container`, else of tsyringe's root, which stays empty. */
  readonly container: DependencyContainer;
  readonly logger: Logger;
  readonly endpoints: Endpoints;
  readonly health: Health;
  /** Path of the generated admin secret, when this start wrote one. */
  adminSecretFile?: string;
  /** Where the admin secret is, as the bootstrap found it (the start banner says so). */
  adminSecret?: AdminSecretSource;
  private readonly started: Started[] = [];
  /** Each plugin instance's own container, disposed after the server's components stopped. */
  private readonly scopes: DependencyContainer[] = [];
  private state: 'new' | 'starting' | 'running' | 'stopping' | 'stopped' = 'new';
  private purgeTimer?: NodeJS.Timeout;

  readonly config: NitrogenConfig;

  constructor(
    config: NitrogenConfig,
    private readonly options: ServerOptions,
  ) {
    this.config = { ...config, dataDir: resolve(config.dataDir) };
    this.logger = options.logger ?? createLogger(config.log.level);
    this.container = (options.container ?? rootContainer).createChildContainer();
    registerCoreServices(this.container, this.config, this.logger);
    this.endpoints = this.container.resolve(Tokens.Endpoints);
    this.health = this.container.resolve(Tokens.Health);
  }

  async start(): Promise<void> {
    if (this.state !== 'new') throw new NitrogenError('NITROGEN_ERR_INTERNAL', `server cannot start from state ${this.state}`);
    this.state = 'starting';
    try {
      await this.startAll();
      this.state = 'running';
      this.health.setPhase('running');
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /** Resolves every plugin and checks its needs and options; throws every problem at once. */
  private async plan(): Promise<Plan> {
    // The core's own tokens are checked by step (preflight.ts); beyond them, what the embedding application provides.
    const parent = this.options.container ?? rootContainer;
    const { plan, problems, onlyPluginFaults } = await planPlugins(this.config, withDefaultIdentity(this.options.catalog), (token) => parent.isRegistered(token, true));
    if (plan) return plan;
    throw problemsError(onlyPluginFaults ? 'NITROGEN_ERR_PLUGIN' : 'NITROGEN_ERR_CONFIG', 'configuration', problems);
  }

  private async startAll(): Promise<void> {
    const { config, container, health } = this;
    // Nothing touches the data directory before the whole configuration passed.
    const plan = await this.plan();
    this.privateDataDir();

    // First started, last stopped: transports and sinks stop before the bus they share.
    const cluster: Cluster = plan.cluster ? await this.load(Tokens.Cluster, plan.cluster) : new LocalCluster();
    if (!plan.cluster) container.register(Tokens.Cluster, { useValue: cluster });
    // Not critical: without the bus an instance still acknowledges durably; only live delivery to other instances waits.
    else health.watch('cluster', 'cluster', { critical: false, probe: () => cluster.health() });
    const principalEvents = container.resolve(Tokens.PrincipalEvents);
    principalEvents.connect(cluster, this.logger);

    const store = await this.load(Tokens.Store, plan.store);
    // A read that every store answers cheaply, unless the store says how it is itself.
    health.watch('store', 'store', { critical: true, probe: reportsHealth(store) ? () => store.health() : () => store.getCheckpoint('nitrogen:health').then(() => OK) });
    const registry = await this.load(Tokens.Registry, plan.registry);
    health.watch('registry', 'registry', { critical: true, probe: reportsHealth(registry) ? () => registry.health() : () => registry.getPrincipal('admin').then(() => OK) });
    await this.startComponent('password-hasher', container.resolve(Tokens.PasswordHasher));
    const identity = await this.load(Tokens.Identity, plan.identity);
    // Core services are built at their step, transports or not: their metrics exist from the start.
    container.resolve(Tokens.Authenticator);
    health.watch('identity', 'identity', { critical: true, probe: reportsHealth(identity) ? () => identity.health() : undefined });
    // Another instance changed permission records: reload them now, not at the next refresh.
    principalEvents.on('permissions', (local) => {
      if (!local) identity.permissionsChanged().catch((err: unknown) => this.logger.warn({ err }, 'could not reload permission records'));
    });
    await this.startComponent('presence', container.resolve(Tokens.Presence));
    this.adminSecret = await bootstrapAdmin(registry, identity, config.dataDir, config.adminSecret, this.logger);
    if (this.adminSecret.kind === 'generated') this.adminSecretFile = this.adminSecret.file;

    const sinks: Sink[] = [];
    for (const [i, planned] of plan.sinks.entries()) {
      const entry = config.sinks[i]!;
      const worker = planned.plugin.deliveryWorker;
      // Fed from the store, a sink may run in a delivery worker; in ack "sink" mode it is the acknowledgement, on this thread.
      if (worker && config.ack === 'store' && entry.delivery.thread === 'worker') {
        const data = { ...worker, name: planned.name, options: entry.options, config: JSON.parse(JSON.stringify(config)) as unknown, dataDir: config.dataDir, level: this.logger.level };
        const sink = new WorkerSink(planned.name, data, this.logger.child({ plugin: planned.name }), container.resolve(Tokens.Metrics));
        await this.startComponent(`sink:${planned.name}`, sink);
        sinks.push(sink);
      } else sinks.push(await this.create(planned));
    }
    container.register(Tokens.Sinks, { useValue: sinks });

    const commits = container.resolve(GroupCommit);
    this.track('group-commit', { stop: () => commits.close() });
    const bus = container.resolve(Tokens.Bus);
    // Live subscribers (MQTT, SSE, devices' commands) are served by the ingestion and consumption roles.
    bus.connect(
      cluster,
      config.cluster.roles.some((role) => role !== 'registry'),
    );
    const ingestor = container.resolve(Tokens.Ingestor);
    await container.resolve(Tokens.Presence).attach({
      instanceId: container.resolve(Tokens.Instance).id,
      events: config.devices.presenceEvents,
      flushMs: parseDuration(config.devices.presenceFlush),
      record: (messages) => ingestor.record(messages, 'presence'),
    });

    const runners: SinkRunner[] = [];
    container.register(Tokens.SinkRunners, { useValue: runners });
    const deadLetters = container.resolve(Tokens.DeadLetters);
    let leases: SinkLeases | undefined;
    if (config.ack === 'store') {
      const sinkMetrics = new SinkMetrics(container.resolve(Tokens.Metrics), () => runners);
      const filters = config.sinks.map((entry) => entry.filter);
      bus.subscribe(() => {
        for (const runner of runners) runner.notify();
      });
      if (cluster.leases && sinks.length > 0) {
        // On a cluster each sink's partitions are leased to one instance at a time (core/sink-leases.ts).
        const index = new Map(sinks.map((sink, i) => [sink.name, i]));
        const units = sinks.flatMap((sink, i) => Array.from({ length: config.sinks[i]!.delivery.partitions }, (_, partition) => ({ sink: sink.name, partition, partitions: config.sinks[i]!.delivery.partitions })));
        const instance = container.resolve(Tokens.Instance);
        const feedUnit = async (unit: SinkUnit, checkpoints: UnitCheckpoints) => {
          const i = index.get(unit.sink)!;
          const partition = (m: { from: string }) => partitionOf(m.from, unit.partitions) === unit.partition;
          const runner = new SinkRunner(sinks[i]!, filters[i]!, store, deadLetters, this.logger, sinkMetrics, config.sinks[i]!.delivery, { partition, checkpoints, label: { index: unit.partition, of: unit.partitions } });
          await runner.start();
          runners.push(runner);
          return {
            stop: async () => {
              const at = runners.indexOf(runner);
              if (at >= 0) runners.splice(at, 1);
              await runner.stop();
            },
          };
        };
        leases = new SinkLeases(cluster.leases, store, units, feedUnit, { member: instance.id, owner: `${instance.id}/${instance.run}`, ttlMs: parseDuration(config.cluster.sinkLeaseTtl) }, this.logger);
        await this.startComponent('sink-leases', leases);
        for (const sink of sinks) {
          health.watch(`sink:${sink.name}`, 'sink', { critical: false, probe: () => partitionedSinkHealth(runners.filter((r) => r.sink === sink)) });
        }
      } else {
        for (const [i, sink] of sinks.entries()) {
          const runner = new SinkRunner(sink, filters[i]!, store, deadLetters, this.logger, sinkMetrics, config.sinks[i]!.delivery);
          runners.push(runner);
          await this.startComponent(`sink-runner:${sink.name}`, runner);
          // Fed from the store, a sink that is down delays its deliveries, not ingestion: never critical.
          health.watch(`sink:${sink.name}`, 'sink', { critical: false, probe: () => sinkHealth(runner) });
        }
      }
      // By sink, not by index: on a cluster the runners come and go with the partitions' leases.
      const slowAcks = new Set(sinks.filter((_, i) => config.sinks[i]!.delivery.backpressure === 'slow-acks'));
      if (slowAcks.size > 0) ingestor.throttle(new BackpressureGate(() => runners.some((runner) => slowAcks.has(runner.sink) && runner.overLag() !== undefined)));
    } else {
      // Pass-through: the sinks are the acknowledgement, so one that fails stops ingestion.
      for (const sink of sinks) health.watch(`sink:${sink.name}`, 'sink', { critical: true, probe: reportsHealth(sink) ? () => sink.health() : undefined });
    }
    // What a sink has not yet passed stays: on a cluster, every partition's checkpoint, wherever it is fed.
    const leased = leases;
    this.schedulePurge(store, leased ? () => leased.positions() : async () => runners.map((runner) => runner.status().position));

    const roles = new Set(config.cluster.roles);
    for (const planned of plan.transports) {
      const served = planned.plugin.roles;
      if (served && !served.some((role) => roles.has(role))) {
        this.logger.info({ transport: planned.name, serves: served, roles: [...roles] }, 'transport not started: this instance runs none of its roles');
        continue;
      }
      const transport = await this.create(planned);
      health.watch(`transport:${planned.name}`, 'transport', { critical: true, probe: reportsHealth(transport) ? () => transport.health() : undefined });
    }
    await health.monitor(parseDuration(config.health.probeInterval), parseDuration(config.health.probeTimeout));
  }

  /**
   * The data directory holds secret digests and the token key: only this user may enter it.
   * A directory that already exists is tightened too (its files may have been made before).
   */
  private privateDataDir(): void {
    const dir = this.config.dataDir;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const mode = statSync(dir).mode & 0o777;
    if ((mode & 0o077) === 0) return;
    try {
      chmodSync(dir, mode & 0o700);
      this.logger.warn({ dataDir: dir, was: mode.toString(8) }, 'data directory was open to other users; its mode is now 0700');
    } catch (err) {
      this.logger.warn({ dataDir: dir, mode: mode.toString(8), err }, 'data directory is open to other users and its mode could not be changed');
    }
  }

  /** Creates and starts a port's plugin, then provides it under its token to everything created after it. */
  private async load<K extends PluginKind>(token: InjectionToken<PluginComponents[K]>, planned: PlannedPlugin<K>): Promise<PluginComponents[K]> {
    const component = await this.create(planned);
    // A value: tsyringe resolves synchronously, and a plugin is created and started asynchronously.
    this.container.register(token, { useValue: component });
    return component;
  }

  /**
   * Creates one planned plugin in a container of its own (a child of the server's, with its
   * logger and name) and starts it; it is stopped in reverse order later.
   */
  private async create<K extends PluginKind>(planned: PlannedPlugin<K>): Promise<PluginComponents[K]> {
    const { plugin, kind, name } = planned;
    const logger = this.logger.child({ plugin: name });
    const scope = this.container.createChildContainer();
    this.scopes.push(scope);
    scope.register(Tokens.Logger, { useValue: logger });
    scope.register(Tokens.PluginName, { useValue: name });
    const context = { container: scope, config: this.config, logger, metrics: this.container.resolve(Tokens.Metrics), dataDir: this.config.dataDir, name };
    const component = await plugin.create(context, planned.options);
    try {
      await this.startComponent(`${kind}:${name}`, component);
    } catch (err) {
      throw explainStartFailure(err, planned);
    }
    return component;
  }

  private async startComponent(name: string, component: Lifecycle): Promise<void> {
    // Tracked before start, so a start that fails half-way still gets its stop().
    this.track(name, component);
    await component.start?.();
  }

  private track(name: string, component: Lifecycle): void {
    this.started.push({ name, component });
  }

  private schedulePurge(store: Store, positions: () => Promise<(FeedPosition | null)[]>): void {
    const { ttl, purgeInterval } = this.config.retention;
    const ttlMs = ttl === undefined ? undefined : parseDuration(ttl);
    this.purgeTimer = setInterval(() => {
      const now = new Date();
      // What a sink has not yet passed stays, expired or not: retention never outruns delivery.
      positions()
        .then((keepAfter) => store.purgeExpired(now, ttlMs === undefined ? undefined : new Date(now.getTime() - ttlMs), keepAfter))
        .catch((err) => this.logger.warn({ err }, 'retention purge failed'));
    }, parseDuration(purgeInterval));
    this.purgeTimer.unref();
  }

  /** Stops every started component in reverse order; errors are logged, not thrown. */
  async stop(): Promise<void> {
    if (this.state === 'stopped' || this.state === 'stopping') return;
    this.state = 'stopping';
    // Unready first, so a load balancer moves traffic away while transports drain.
    this.health.setPhase('stopping');
    clearInterval(this.purgeTimer);
    for (const { name, component } of this.started.splice(0).reverse()) {
      try {
        await component.stop?.();
      } catch (err) {
        this.logger.error({ err, component: name }, 'component failed to stop');
      }
    }
    this.state = 'stopped';
    this.health.setPhase('stopped');
    // Components stopped in order above; disposing ends the containers (a later resolve throws)
    // and disposes what they constructed that is Disposable.
    for (const scope of this.scopes.splice(0).reverse()) await scope.dispose();
    await this.container.dispose();
  }
}

/** A sink fed from the store: down while its sends fail (an authentication refused, a peer gone), with its lag. */
async function sinkHealth(runner: SinkRunner): Promise<ComponentHealth> {
  const status = runner.status();
  const lag = await runner.lag();
  const details = lag ? { lagMessages: lag.count, oldestUndelivered: lag.oldestTs } : undefined;
  if (status.retrying) return { status: 'down', reason: brief(`sends are failing and being retried: ${status.lastError}`), details };
  const own = reportsHealth(runner.sink) ? await runner.sink.health() : OK;
  const over = runner.overLag();
  if (over && own.status === 'ok') return { status: 'degraded', reason: `delivery is behind: ${over}`, details: { ...own.details, ...details } };
  return { ...own, details: { ...own.details, ...details } };
}

/** A sink spread over instances: the partitions fed here, as the worst of them; no partition here is not a fault. */
async function partitionedSinkHealth(runners: SinkRunner[]): Promise<ComponentHealth> {
  if (runners.length === 0) return { status: 'ok', details: { partitionsHere: 0 } };
  const each = await Promise.all(runners.map(sinkHealth));
  const worst = each.find((h) => h.status === 'down') ?? each.find((h) => h.status === 'degraded') ?? each[0]!;
  return { ...worst, details: { ...worst.details, partitionsHere: runners.length } };
}

/** A listener that could not bind says which setting chooses its address, instead of a stack trace. */
function explainStartFailure(err: unknown, planned: PlannedPlugin): unknown {
  const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
  if (planned.kind !== 'transport' || e?.syscall !== 'listen') return err;
  const envVar = ({ mqtt: 'NITROGEN_MQTT_PORT', rest: 'NITROGEN_REST_PORT' } as Record<string, string>)[planned.use];
  const port = `choose another port: ${planned.where}.options.port in the configuration${envVar ? `, or ${envVar}` : ''} (0 picks a free one)`;
  const why: Record<string, string> = {
    EADDRINUSE: `is in use by another process; ${port}`,
    EACCES: `needs privileges this process does not have (ports below 1024 do); ${port}`,
    EADDRNOTAVAIL: 'is not an address of this machine; set "host" in the configuration, or NITROGEN_HOST',
  };
  const reason = why[e.code ?? ''] ?? `could not be used (${e.code}); ${port}`;
  return new NitrogenError('NITROGEN_ERR_CONFIG', `${planned.where} (${planned.use}): cannot listen on ${e.address}:${e.port}: the address ${reason}`, { cause: err });
}

/** Validates the configuration and returns a server ready to `start()`. */
export function createServer(config: NitrogenConfigInput | NitrogenConfig, options: ServerOptions): NitrogenServer {
  return new NitrogenServer(parseConfig(config), options);
}
