import type { InjectionToken } from './di.js';
import type { Logger } from 'pino';
import type { Registry as MetricsRegistry } from 'prom-client';
import type { NitrogenConfig } from './config.js';
import type { Identity } from './ports/identity.js';
import type { Registry } from './ports/registry.js';
import type { Sink } from './ports/sink.js';
import type { Store } from './ports/store.js';
import type { Ingestor } from './ingest.js';
import type { MessageBus } from './bus.js';
import type { Endpoints } from './endpoints.js';
import type { Presence } from './presence.js';
import type { SinkRunner } from './sink-runner.js';
import type { DeadLetters } from './dead-letters.js';
import type { PrincipalEvents } from './principal-events.js';
import type { Authenticator } from './authenticator.js';
import type { PasswordHasher } from './password-hasher.js';
import type { Health } from './health.js';
import type { PermissionRecords } from './permission-records.js';
import type { Principals } from './principals.js';
import type { Devices } from './devices.js';
import type { Cluster, InstanceIdentity } from './ports/cluster.js';
import type { WebApps } from './web-apps.js';

/**
 * Dependency-injection tokens, each typed by what it resolves to (tsyringe checks a
 * registration against it). Ports and core services are resolved by these tokens, never by
 * class, so an adapter can stand in for any of them. docs/plugins.md says from which step of
 * the start each one resolves.
 */
export const Tokens = {
  Config: Symbol('nitrogen.Config') as InjectionToken<NitrogenConfig>,
  /** The server's logger; in a plugin's own container, that plugin instance's (tagged with its name). */
  Logger: Symbol('nitrogen.Logger') as InjectionToken<Logger>,
  /** In a plugin's own container: the instance name (`PluginContext.name`). */
  PluginName: Symbol('nitrogen.PluginName') as InjectionToken<string>,
  Metrics: Symbol('nitrogen.Metrics') as InjectionToken<MetricsRegistry>,
  Store: Symbol('nitrogen.Store') as InjectionToken<Store>,
  Registry: Symbol('nitrogen.Registry') as InjectionToken<Registry>,
  Identity: Symbol('nitrogen.Identity') as InjectionToken<Identity>,
  Sinks: Symbol('nitrogen.Sinks') as InjectionToken<Sink[]>,
  Ingestor: Symbol('nitrogen.Ingestor') as InjectionToken<Ingestor>,
  Bus: Symbol('nitrogen.Bus') as InjectionToken<MessageBus>,
  Endpoints: Symbol('nitrogen.Endpoints') as InjectionToken<Endpoints>,
  Presence: Symbol('nitrogen.Presence') as InjectionToken<Presence>,
  SinkRunners: Symbol('nitrogen.SinkRunners') as InjectionToken<SinkRunner[]>,
  DeadLetters: Symbol('nitrogen.DeadLetters') as InjectionToken<DeadLetters>,
  PrincipalEvents: Symbol('nitrogen.PrincipalEvents') as InjectionToken<PrincipalEvents>,
  /** Bounded password hashing off the event loop; for any Identity that stores passwords. */
  PasswordHasher: Symbol('nitrogen.PasswordHasher') as InjectionToken<PasswordHasher>,
  /** Rate-limited credential checks in front of the Identity port; what transports call. */
  Authenticator: Symbol('nitrogen.Authenticator') as InjectionToken<Authenticator>,
  Health: Symbol('nitrogen.Health') as InjectionToken<Health>,
  /** The use cases on principals (core/principals.ts): what transports and tools call to register, change, delete… */
  Principals: Symbol('nitrogen.Principals') as InjectionToken<Principals>,
  /** The use cases on permission records (core/permission-records.ts). */
  PermissionRecords: Symbol('nitrogen.PermissionRecords') as InjectionToken<PermissionRecords>,
  /** Onboarding (API keys, claim codes, certificates), last-known state and twins (core/devices.ts). */
  Devices: Symbol('nitrogen.Devices') as InjectionToken<Devices>,
  /** This instance among the deployment's: `cluster.instanceId` and a random id of this run. */
  Instance: Symbol('nitrogen.Instance') as InjectionToken<InstanceIdentity>,
  /** What the instances share besides store and registry: the configured `cluster.bus`, or one process alone. */
  Cluster: Symbol('nitrogen.Cluster') as InjectionToken<Cluster>,
  /** Static files served beside the API by the HTTP transport (the portal's). */
  WebApps: Symbol('nitrogen.WebApps') as InjectionToken<WebApps>,
} as const;

export function tokenName(token: InjectionToken<unknown>): string {
  if (typeof token === 'symbol') return token.description ?? 'symbol';
  if (typeof token === 'string') return token;
  // A class by its name: String() of a class is its whole source text.
  return typeof token === 'function' ? token.name : 'a delayed class';
}
