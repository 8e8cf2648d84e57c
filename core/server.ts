import 'reflect-metadata';
import { chmodSync, mkdirSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { container as rootContainer, type DependencyContainer } from 'tsyringe';
import { Authenticator } from './authenticator.js';
import { bootstrapAdmin, type AdminSecretSource } from './bootstrap.js';
import { MessageBus } from './bus.js';
import { parseConfig, type NitrogenConfig, type NitrogenConfigInput } from './config.js';
import { DeadLetters } from './dead-letters.js';
import { parseDuration } from './duration.js';
import { Endpoints } from './endpoints.js';
import { NitrogenError, wrapError } from './errors.js';
import { GroupCommit } from './group-commit.js';
import { Health, OK, brief, failed, healthMetrics, reportsHealth, type ComponentHealth } from './health.js';
import { Ingestor } from './ingest.js';
import { IngestQuota } from './ingest-quota.js';
import { createLogger, type Logger } from './logger.js';
import type { Message } from './message.js';
import { CoreMetrics, createMetricsRegistry } from './metrics.js';
import { PasswordHasher } from './password-hasher.js';
import type { PluginCatalog } from './plugin.js';
import type { Identity } from './ports/identity.js';
import type { Lifecycle } from './ports/lifecycle.js';
import type { Registry } from './ports/registry.js';
import type { Sink, SinkFilter } from './ports/sink.js';
import type { Store } from './ports/store.js';
import { planPlugins, withDefaultIdentity, type Plan, type PlannedPlugin } from './preflight.js';
import { problemsError } from './problems.js';
import { Presence } from './presence.js';
import { PrincipalEvents } from './principal-events.js';
import { Principals } from './principals.js';
import { PermissionRecords } from './permission-records.js';
import { SinkMetrics, SinkRunner, sinkMatches } from './sink-runner.js';
import { Tokens } from './tokens.js';
import { Devices, instanceId } from './devices.js';

export { defaultIdentityPlugin } from './preflight.js';

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
  readonly container: DependencyContainer;
  readonly logger: Logger;
  readonly endpoints = new Endpoints();
  readonly health = new Health();
  /** Path of the generated admin secret, when this start wrote one. */
  adminSecretFile?: string;
  /** Where the admin secret is, as the bootstrap found it (the start banner says so). */
  adminSecret?: AdminSecretSource;
  private readonly started: Started[] = [];
  private state: 'new' | 'starting' | 'running' | 'stopping' | 'stopped' = 'new';
  private purgeTimer?: NodeJS.Timeout;

  readonly config: NitrogenConfig;

  constructor(config: NitrogenConfig, private readonly options: ServerOptions) {
    this.config = { ...config, dataDir: resolve(config.dataDir) };
    this.logger = options.logger ?? createLogger(config.log.level);
    this.container = (options.container ?? rootContainer).createChildContainer();
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
    const parent = this.container;
    const { plan, problems, onlyPluginFaults } = await planPlugins(this.config, withDefaultIdentity(this.options.catalog), (token) => parent.isRegistered(token, true));
    if (plan) return plan;
    throw problemsError(onlyPluginFaults ? 'NITROGEN_ERR_PLUGIN' : 'NITROGEN_ERR_CONFIG', 'configuration', problems);
  }

  private async startAll(): Promise<void> {
    const { config, container, health } = this;
    // Nothing touches the data directory before the whole configuration passed.
    const plan = await this.plan();
    this.privateDataDir();
    const metrics = createMetricsRegistry();
    healthMetrics(metrics, health);
    container.register(Tokens.Config, { useValue: config });
    container.register(Tokens.Logger, { useValue: this.logger });
    container.register(Tokens.Metrics, { useValue: metrics });
    container.register(Tokens.Endpoints, { useValue: this.endpoints });
    container.register(Tokens.PrincipalEvents, { useValue: new PrincipalEvents() });
    container.register(Tokens.Health, { useValue: health });

    const store = await this.load<Store>(plan.store);
    container.register(Tokens.Store, { useValue: store });
    // A read that every store answers cheaply, unless the store says how it is itself.
    health.watch('store', 'store', { critical: true, probe: reportsHealth(store) ? () => store.health() : () => store.getCheckpoint('nitrogen:health').then(() => OK) });
    const registry = await this.load<Registry>(plan.registry);
    container.register(Tokens.Registry, { useValue: registry });
    health.watch('registry', 'registry', { critical: true, probe: reportsHealth(registry) ? () => registry.health() : () => registry.getPrincipal('admin').then(() => OK) });
    const hasher = new PasswordHasher(config.credentials.hashing, metrics);
    await this.startComponent('password-hasher', hasher);
    container.register(Tokens.PasswordHasher, { useValue: hasher });
    const identity = await this.load<Identity>(plan.identity);
    container.register(Tokens.Identity, { useValue: identity });
    container.register(Tokens.Authenticator, { useValue: new Authenticator(identity, config.credentials, this.logger, metrics) });
    health.watch('identity', 'identity', { critical: true, probe: reportsHealth(identity) ? () => identity.health() : undefined });
    const presence = new Presence(registry, this.logger);
    await this.startComponent('presence', presence);
    container.register(Tokens.Presence, { useValue: presence });
    container.register(Tokens.Principals, { useValue: new Principals(identity, registry, container.resolve(Tokens.PrincipalEvents), config.limits) });
    container.register(Tokens.PermissionRecords, { useValue: new PermissionRecords(identity, registry) });
    const devices = new Devices({ identity, registry, store, authenticator: container.resolve(Tokens.Authenticator), events: container.resolve(Tokens.PrincipalEvents), logger: this.logger }, config.devices);
    container.register(Tokens.Devices, { useValue: devices });
    this.adminSecret = await bootstrapAdmin(registry, identity, config.dataDir, config.adminSecret, this.logger);
    if (this.adminSecret.kind === 'generated') this.adminSecretFile = this.adminSecret.file;

    const sinks: Sink[] = [];
    for (const planned of plan.sinks) sinks.push(await this.load<Sink>(planned));
    container.register(Tokens.Sinks, { useValue: sinks });

    const coreMetrics = new CoreMetrics(metrics);
    const bus = new MessageBus((err) => this.logger.error({ err }, 'a message listener failed'));
    const filters = config.sinks.map((entry) => entry.filter);
    // Every commit tells how the store is: a failed one leaves it degraded until one succeeds
    // (the probe decides whether it is down; an unready instance would get no commit to retry).
    const append = (batch: Message[]) =>
      store.append(batch).then(
        () => health.observe('store', OK, 'commits'),
        (err: unknown) => {
          health.observe('store', { ...failed('the last commit failed', err), status: 'degraded' }, 'commits');
          throw err;
        },
      );
    // ack "sink" (docs/architecture.md, "Delivery"): a pass-through server acknowledges once every sink accepted.
    const commit = config.ack === 'sink' ? (batch: Message[]) => Promise.all([append(batch), sendToSinks(sinks, filters, batch, health)]).then(() => {}) : append;
    const commits = new GroupCommit(commit, { ...config.ingest, concurrency: store.appendConcurrency ?? 1 }, {
      committed: (count, seconds) => {
        coreMetrics.commitBatch.observe(count);
        coreMetrics.commitSeconds.observe(seconds);
      },
      pendingChanged: (pending) => coreMetrics.pending.set(pending),
    });
    this.track('group-commit', { stop: () => commits.close() });
    container.register(Tokens.Bus, { useValue: bus });
    container.register(Tokens.Ingestor, { useValue: new Ingestor(identity, commits, bus, config.limits, coreMetrics, new IngestQuota(config.quota), devices.state) });
    const ingestor = container.resolve(Tokens.Ingestor);
    devices.state.attach((messages) => ingestor.record(messages, 'devices'));
    await presence.attach({ instanceId: instanceId(config.instanceId, config.dataDir), events: config.devices.presenceEvents, flushMs: parseDuration(config.devices.presenceFlush), record: (messages) => ingestor.record(messages, 'presence') });

    const runners: SinkRunner[] = [];
    container.register(Tokens.SinkRunners, { useValue: runners });
    const deadLetters = new DeadLetters(config.dataDir);
    container.register(Tokens.DeadLetters, { useValue: deadLetters });
    if (config.ack === 'store') {
      const sinkMetrics = new SinkMetrics(metrics, () => runners);
      for (const [i, sink] of sinks.entries()) {
        const runner = new SinkRunner(sink, filters[i]!, store, deadLetters, this.logger, sinkMetrics, config.sinks[i]!.delivery);
        bus.subscribe(() => runner.notify());
        runners.push(runner);
        await this.startComponent(`sink-runner:${sink.name}`, runner);
        // Fed from the store, a sink that is down delays its deliveries, not ingestion: never critical.
        health.watch(`sink:${sink.name}`, 'sink', { critical: false, probe: () => sinkHealth(runner) });
      }
    } else {
      // Pass-through: the sinks are the acknowledgement, so one that fails stops ingestion.
      for (const sink of sinks) health.watch(`sink:${sink.name}`, 'sink', { critical: true, probe: reportsHealth(sink) ? () => sink.health() : undefined });
    }
    this.schedulePurge(store);

    for (const planned of plan.transports) {
      const transport = await this.load(planned);
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

  /** Creates and starts one planned plugin; it is stopped in reverse order later. */
  private async load<T extends Lifecycle>(planned: PlannedPlugin): Promise<T> {
    const { plugin, kind, name } = planned;
    const metrics = this.container.resolve(Tokens.Metrics);
    const component = await plugin.create({ container: this.container, config: this.config, logger: this.logger.child({ plugin: name }), metrics, dataDir: this.config.dataDir, name }, planned.options);
    try {
      await this.startComponent(`${kind}:${name}`, component as Lifecycle);
    } catch (err) {
      throw explainStartFailure(err, planned);
    }
    return component as T;
  }

  private async startComponent(name: string, component: Lifecycle): Promise<void> {
    // Tracked before start, so a start that fails half-way still gets its stop().
    this.track(name, component);
    await component.start?.();
  }

  private track(name: string, component: Lifecycle): void {
    this.started.push({ name, component });
  }

  private schedulePurge(store: Store): void {
    const { ttl, purgeInterval } = this.config.retention;
    const ttlMs = ttl === undefined ? undefined : parseDuration(ttl);
    this.purgeTimer = setInterval(() => {
      const now = new Date();
      // What a sink has not yet passed stays, expired or not: retention never outruns delivery.
      const keepAfter = this.container.resolve(Tokens.SinkRunners).map((runner) => runner.status().position);
      store.purgeExpired(now, ttlMs === undefined ? undefined : new Date(now.getTime() - ttlMs), keepAfter).catch((err) => this.logger.warn({ err }, 'retention purge failed'));
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
    this.container.clearInstances();
  }
}

/** A sink fed from the store: down while its sends fail (an authentication refused, a peer gone), with its lag. */
async function sinkHealth(runner: SinkRunner): Promise<ComponentHealth> {
  const status = runner.status();
  const lag = await runner.lag();
  const details = lag ? { lagMessages: lag.count, oldestUndelivered: lag.oldestTs } : undefined;
  if (status.retrying) return { status: 'down', reason: brief(`sends are failing and being retried: ${status.lastError}`), details };
  const own = reportsHealth(runner.sink) ? await runner.sink.health() : OK;
  return { ...own, details: { ...own.details, ...details } };
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

/** Sends a batch to every sink whose filter selects part of it; resolves when all accepted. */
async function sendToSinks(sinks: Sink[], filters: SinkFilter[], batch: Message[], health: Health): Promise<void> {
  await Promise.all(
    sinks.map((sink, i) => {
      const selected = batch.filter((m) => sinkMatches(filters[i]!, m));
      if (selected.length === 0) return undefined;
      return sink.send(selected).then(
        () => health.observe(`sink:${sink.name}`, OK, 'sends'),
        (err: unknown) => {
          // Degraded, not down: an unready instance would get no message to show the sink is back.
          health.observe(`sink:${sink.name}`, { ...failed('the last send failed', err), status: 'degraded' }, 'sends');
          // A sink that throws something else still answers as a sink failure, not a store one.
          throw wrapError(err, 'NITROGEN_ERR_SINK_RETRYABLE', `sink ${sink.name} failed`);
        },
      );
    }),
  );
}

/** Validates the configuration and returns a server ready to `start()`. */
export function createServer(config: NitrogenConfigInput | NitrogenConfig, options: ServerOptions): NitrogenServer {
  return new NitrogenServer(parseConfig(config), options);
}
