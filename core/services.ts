import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { Authenticator } from './authenticator.js';
import { MessageBus } from './bus.js';
import type { NitrogenConfig } from './config.js';
import { DeadLetters } from './dead-letters.js';
import { Devices } from './devices.js';
import { instanceCachingFactory, Lifecycle, type DependencyContainer, type InjectionToken } from './di.js';
import { Endpoints } from './endpoints.js';
import { WebApps } from './web-apps.js';
import { NitrogenError, wrapError } from './errors.js';
import { GroupCommit } from './group-commit.js';
import { Health, OK, failed, healthMetrics } from './health.js';
import { Ingestor } from './ingest.js';
import { IngestQuota } from './ingest-quota.js';
import type { Logger } from './logger.js';
import type { Message } from './message.js';
import { CoreMetrics, createMetricsRegistry } from './metrics.js';
import { PasswordHasher } from './password-hasher.js';
import type { Sink, SinkFilter } from './ports/sink.js';
import { PermissionRecords } from './permission-records.js';
import { Presence } from './presence.js';
import { Principals } from './principals.js';
import { PrincipalEvents } from './principal-events.js';
import { sinkMatches } from './sink-runner.js';
import { Tokens } from './tokens.js';

/**
 * Registers a core service: built once per server, on first resolution, from the server's own
 * container. Not from the container that asks: a plugin's container gives `Tokens.Logger` the
 * plugin's logger, which a core service must not keep.
 */
function service<T>(server: DependencyContainer, token: InjectionToken<T>, build: (c: DependencyContainer) => T): void {
  server.register(token, { useFactory: instanceCachingFactory(() => build(server)) });
}

/**
 * The core's services as providers of the server's container, each built by injection from the
 * tokens it depends on. Registering resolves nothing: the server resolves each one at its step
 * of the start (docs/plugins.md, "Dependency injection"), once what it depends on is there.
 * The ports (Store, Registry, Identity, Sinks) are not here: plugins create them, asynchronously,
 * and the server registers each once it has started.
 */
export function registerCoreServices(server: DependencyContainer, config: NitrogenConfig, logger: Logger): void {
  server.register(Tokens.Config, { useValue: config });
  server.register(Tokens.Logger, { useValue: logger });
  // A factory: made on first use, once the configuration passed and the data directory is private.
  server.register(Tokens.Instance, { useFactory: instanceCachingFactory(() => ({ id: instanceId(config), run: randomBytes(6).toString('hex') })) });
  // No dependencies: one instance per server, the registration keeps it.
  server.register(Tokens.Endpoints, { useClass: Endpoints }, { lifecycle: Lifecycle.Singleton });
  server.register(Tokens.WebApps, { useClass: WebApps }, { lifecycle: Lifecycle.Singleton });
  server.register(Tokens.PrincipalEvents, { useClass: PrincipalEvents }, { lifecycle: Lifecycle.Singleton });
  server.register(Tokens.Health, { useClass: Health }, { lifecycle: Lifecycle.Singleton });

  service(server, Tokens.Metrics, (c) => {
    // A registry per server, never prom-client's global one.
    const metrics = createMetricsRegistry();
    healthMetrics(metrics, c.resolve(Tokens.Health));
    return metrics;
  });
  service(server, CoreMetrics, (c) => new CoreMetrics(c.resolve(Tokens.Metrics)));
  service(server, Tokens.PasswordHasher, (c) => new PasswordHasher(c.resolve(Tokens.Config).credentials.hashing, c.resolve(Tokens.Metrics)));
  service(server, Tokens.Authenticator, (c) => new Authenticator(c.resolve(Tokens.Identity), c.resolve(Tokens.Config).credentials, c.resolve(Tokens.Logger), c.resolve(Tokens.Metrics)));
  service(server, Tokens.Presence, (c) => new Presence(c.resolve(Tokens.Registry), c.resolve(Tokens.Logger)));
  service(server, Tokens.Principals, (c) => new Principals(c.resolve(Tokens.Identity), c.resolve(Tokens.Registry), c.resolve(Tokens.PrincipalEvents), c.resolve(Tokens.Config).limits));
  service(server, Tokens.PermissionRecords, (c) => new PermissionRecords(c.resolve(Tokens.Identity), c.resolve(Tokens.Registry), c.resolve(Tokens.PrincipalEvents)));
  service(
    server,
    Tokens.Devices,
    (c) =>
      new Devices(
        {
          identity: c.resolve(Tokens.Identity),
          registry: c.resolve(Tokens.Registry),
          store: c.resolve(Tokens.Store),
          authenticator: c.resolve(Tokens.Authenticator),
          events: c.resolve(Tokens.PrincipalEvents),
          logger: c.resolve(Tokens.Logger),
        },
        c.resolve(Tokens.Config).devices,
      ),
  );
  service(server, Tokens.DeadLetters, (c) => new DeadLetters(c.resolve(Tokens.Config).dataDir));
  service(server, Tokens.Bus, (c) => {
    const log = c.resolve(Tokens.Logger);
    return new MessageBus(c.resolve(Tokens.Instance), (err) => log.error({ err }, 'a message listener failed'));
  });
  service(server, GroupCommit, groupCommit);
  service(server, Tokens.Ingestor, (c) => {
    const { limits, quota } = c.resolve(Tokens.Config);
    const { state } = c.resolve(Tokens.Devices);
    const ingestor = new Ingestor(c.resolve(Tokens.Identity), c.resolve(GroupCommit), c.resolve(Tokens.Bus), limits, c.resolve(CoreMetrics), new IngestQuota(quota), state);
    // Device state both hooks the commit (types and reports) and makes messages of its own (desired state).
    state.attach((messages) => ingestor.record(messages, 'devices'));
    return ingestor;
  });
}

const INSTANCE_ID = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * `cluster.instanceId`, else an id made once and kept in `<dataDir>/instance.id`: stable across
 * restarts, so presence finds what an earlier run of this instance left connected
 * (core/presence.ts), and unique to each data directory. Two instances never share a data
 * directory; the bus tells processes apart by their run as well, should they share an id.
 */
function instanceId(config: NitrogenConfig): string {
  if (config.cluster.instanceId !== undefined) return config.cluster.instanceId;
  const file = join(config.dataDir, 'instance.id');
  if (existsSync(file)) {
    const kept = readFileSync(file, 'utf8').trim();
    if (!INSTANCE_ID.test(kept)) throw new NitrogenError('NITROGEN_ERR_CONFIG', `${file} must hold an instance id of 1-64 of A-Z a-z 0-9 . _ - (or set cluster.instanceId)`);
    return kept;
  }
  const host = hostname()
    .replace(/[^A-Za-z0-9._-]/g, '-')
    .slice(0, 48);
  const id = `${host || 'instance'}-${randomBytes(4).toString('hex')}`;
  writeFileSync(file, id + '\n', { mode: 0o600 });
  return id;
}

/**
 * The group commit whose commit is the store append or, with ack "sink" (docs/architecture.md,
 * "Delivery"), the append together with a send to every sink: a pass-through server
 * acknowledges once every sink accepted.
 */
function groupCommit(c: DependencyContainer): GroupCommit {
  const config = c.resolve(Tokens.Config);
  const store = c.resolve(Tokens.Store);
  const health = c.resolve(Tokens.Health);
  const metrics = c.resolve(CoreMetrics);
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
  let commit = append;
  if (config.ack === 'sink') {
    const sinks = c.resolve(Tokens.Sinks);
    const filters = config.sinks.map((entry) => entry.filter);
    commit = (batch) => Promise.all([append(batch), sendToSinks(sinks, filters, batch, health)]).then(() => {});
  }
  return new GroupCommit(
    commit,
    { ...config.ingest, concurrency: store.appendConcurrency ?? 1 },
    {
      committed: (count, seconds) => {
        metrics.commitBatch.observe(count);
        metrics.commitSeconds.observe(seconds);
      },
      pendingChanged: (pending) => metrics.pending.set(pending),
    },
  );
}

/** Sends a batch to every sink whose filter selects part of it; resolves when all accepted. */
async function sendToSinks(sinks: Sink[], filters: SinkFilter[], batch: Message[], health: Health): Promise<void> {
  await Promise.all(
    // eslint-disable-next-line @typescript-eslint/await-thenable -- a sink the batch does not concern has nothing to wait for
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
