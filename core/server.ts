import 'reflect-metadata';
import { chmodSync, mkdirSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { container as rootContainer, type DependencyContainer } from 'tsyringe';
import { Authenticator } from './authenticator.js';
import { bootstrapAdmin, type AdminSecretSource } from './bootstrap.js';
import { MessageBus } from './bus.js';
import { parseConfig, type NitrogenConfig, type NitrogenConfigInput } from './config.js';
import { DefaultIdentity, DefaultIdentityOptions } from './default-identity.js';
import { parseDuration } from './duration.js';
import { Endpoints } from './endpoints.js';
import { NitrogenError, wrapError } from './errors.js';
import { GroupCommit } from './group-commit.js';
import { Ingestor } from './ingest.js';
import { IngestQuota } from './ingest-quota.js';
import { createLogger, type Logger } from './logger.js';
import { CoreMetrics, createMetricsRegistry } from './metrics.js';
import { PasswordHasher } from './password-hasher.js';
import { checkPlugin, definePlugin, resolvePlugin, type PluginCatalog, type PluginKind } from './plugin.js';
import type { Identity } from './ports/identity.js';
import type { Lifecycle } from './ports/lifecycle.js';
import type { Registry } from './ports/registry.js';
import type { Sink, SinkFilter } from './ports/sink.js';
import type { Store } from './ports/store.js';
import { SinkMetrics, SinkRunner, sinkMatches } from './sink-runner.js';
import { DeadLetters } from './dead-letters.js';
import type { Message } from './message.js';
import { Presence } from './presence.js';
import { PrincipalEvents } from './principal-events.js';
import { Tokens } from './tokens.js';

/** The default Identity is part of the core: it needs nothing but the Registry port. */
export const defaultIdentityPlugin = definePlugin({
  name: 'default',
  kind: 'identity',
  options: DefaultIdentityOptions,
  needs: [Tokens.Registry, Tokens.PasswordHasher],
  create: ({ container, dataDir, logger }, options) => new DefaultIdentity(container.resolve(Tokens.Registry), options, dataDir, logger, container.resolve(Tokens.PasswordHasher)),
});

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
 * A Nitrogen server: loads the configured plugins into its own child container, starts them
 * in dependency order (store, registry, identity, presence, sinks, the ingestion pipeline and
 * the sink runners, transports) and stops them in reverse, so transports stop accepting
 * before in-flight commits are finished.
 */
export class NitrogenServer {
  readonly container: DependencyContainer;
  readonly logger: Logger;
  readonly endpoints = new Endpoints();
  /** Path of the generated admin secret, when this start wrote one. */
  adminSecretFile?: string;
  /** Where the admin's secret is, for the start banner. */
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
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  private async startAll(): Promise<void> {
    const { config, container } = this;
    this.privateDataDir();
    const metrics = createMetricsRegistry();
    container.register(Tokens.Config, { useValue: config });
    container.register(Tokens.Logger, { useValue: this.logger });
    container.register(Tokens.Metrics, { useValue: metrics });
    container.register(Tokens.Endpoints, { useValue: this.endpoints });
    container.register(Tokens.PrincipalEvents, { useValue: new PrincipalEvents() });

    const store = await this.load<Store>('store', config.store.use, config.store.options, 'store');
    container.register(Tokens.Store, { useValue: store });
    const registry = await this.load<Registry>('registry', config.registry.use, config.registry.options, 'registry');
    container.register(Tokens.Registry, { useValue: registry });
    const hasher = new PasswordHasher(config.credentials.hashing, metrics);
    await this.startComponent('password-hasher', hasher);
    container.register(Tokens.PasswordHasher, { useValue: hasher });
    const identity = await this.load<Identity>('identity', config.identity.use, config.identity.options, 'identity');
    container.register(Tokens.Identity, { useValue: identity });
    container.register(Tokens.Authenticator, { useValue: new Authenticator(identity, config.credentials, this.logger, metrics) });
    const presence = new Presence(registry, this.logger);
    await this.startComponent('presence', presence);
    container.register(Tokens.Presence, { useValue: presence });
    this.adminSecret = await bootstrapAdmin(registry, identity, config.dataDir, config.adminSecret, this.logger);
    if (this.adminSecret.kind === 'generated') this.adminSecretFile = this.adminSecret.file;

    const sinks: Sink[] = [];
    for (const [i, entry] of config.sinks.entries()) {
      const repeated = config.sinks.filter((s) => s.use === entry.use).length > 1;
      sinks.push(await this.load<Sink>('sink', entry.use, entry.options, `sinks.${i}`, (plugin) => entry.name ?? (repeated ? `${plugin}-${i}` : plugin)));
    }
    container.register(Tokens.Sinks, { useValue: sinks });

    const coreMetrics = new CoreMetrics(metrics);
    const bus = new MessageBus((err) => this.logger.error({ err }, 'a message listener failed'));
    const filters = config.sinks.map((entry) => entry.filter);
    // ack "sink" (docs/architecture.md, "Delivery"): a pass-through server acknowledges once every sink accepted.
    const commit = config.ack === 'sink' ? (batch: Message[]) => Promise.all([store.append(batch), sendToSinks(sinks, filters, batch)]).then(() => {}) : (batch: Message[]) => store.append(batch);
    const commits = new GroupCommit(commit, { ...config.ingest, concurrency: store.appendConcurrency ?? 1 }, {
      committed: (count, seconds) => {
        coreMetrics.commitBatch.observe(count);
        coreMetrics.commitSeconds.observe(seconds);
      },
      pendingChanged: (pending) => coreMetrics.pending.set(pending),
    });
    this.track('group-commit', { stop: () => commits.close() });
    container.register(Tokens.Bus, { useValue: bus });
    container.register(Tokens.Ingestor, { useValue: new Ingestor(identity, commits, bus, config.limits, coreMetrics, new IngestQuota(config.quota)) });

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
      }
    }
    this.schedulePurge(store);

    for (const [i, entry] of config.plugins.entries()) {
      await this.load('transport', entry.use, entry.options, `plugins.${i}`);
    }
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

  /** Resolves, checks, creates and starts one plugin; it is stopped in reverse order later. */
  private async load<T extends Lifecycle>(kind: PluginKind, use: string, options: unknown, where: string, naming = (plugin: string) => plugin): Promise<T> {
    const catalog: PluginCatalog = { ...this.options.catalog, identity: { default: async () => defaultIdentityPlugin, ...this.options.catalog.identity } };
    const plugin = await resolvePlugin(kind, use, catalog, where);
    const parsed = checkPlugin(plugin, this.container, options, where);
    const name = naming(plugin.name);
    const metrics = this.container.resolve(Tokens.Metrics);
    const component = await plugin.create({ container: this.container, config: this.config, logger: this.logger.child({ plugin: name }), metrics, dataDir: this.config.dataDir, name }, parsed);
    await this.startComponent(`${kind}:${name}`, component as Lifecycle);
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
    clearInterval(this.purgeTimer);
    for (const { name, component } of this.started.splice(0).reverse()) {
      try {
        await component.stop?.();
      } catch (err) {
        this.logger.error({ err, component: name }, 'component failed to stop');
      }
    }
    this.state = 'stopped';
    this.container.clearInstances();
  }
}

/** Sends a batch to every sink whose filter selects part of it; resolves when all accepted. */
async function sendToSinks(sinks: Sink[], filters: SinkFilter[], batch: Message[]): Promise<void> {
  await Promise.all(
    sinks.map((sink, i) => {
      const selected = batch.filter((m) => sinkMatches(filters[i]!, m));
      // A sink that throws something else still answers as a sink failure, not a store one.
      return selected.length > 0 ? sink.send(selected).catch((err: unknown) => Promise.reject(wrapError(err, 'NITROGEN_ERR_SINK_RETRYABLE', `sink ${sink.name} failed`))) : undefined;
    }),
  );
}

/** Validates the configuration and returns a server ready to `start()`. */
export function createServer(config: NitrogenConfigInput | NitrogenConfig, options: ServerOptions): NitrogenServer {
  return new NitrogenServer(parseConfig(config), options);
}
