/**
 * Nitrogen's public API (the `nitrogen` package): compose a server in code
 * (`createServer(config, { catalog: defaultCatalog })`), write plugins against the ports with
 * constructor injection, and reuse the built-in adapters. The conformance suites are in
 * `nitrogen/testing`.
 */
export { defaultCatalog } from './catalog.js';
export { createServer, NitrogenServer, type ServerOptions } from './core/server.js';
export { loadConfig, parseConfig, type NitrogenConfig, type NitrogenConfigInput } from './core/config.js';
export { definePlugin, type Plugin, type PluginCatalog, type PluginComponents, type PluginContext, type PluginKind, type Transport } from './core/plugin.js';
// One tsyringe for the server and its plugins: a plugin that decorates its classes takes these.
export { inject, injectable, instanceCachingFactory, type DependencyContainer, type InjectionToken } from './core/di.js';
export { Tokens } from './core/tokens.js';
export { ErrorCodes, NitrogenError, isNitrogenError, type ErrorCode } from './core/errors.js';
export type { Message } from './core/message.js';
export type { Identity, AccessToken } from './core/ports/identity.js';
export type { Registry, RegistryRecord } from './core/ports/registry.js';
export type { Store, MessageQuery } from './core/ports/store.js';
export type { Sink, SinkFilter } from './core/ports/sink.js';
export type { Lifecycle, Page } from './core/ports/lifecycle.js';
export type { Cluster, InstanceIdentity, RemoteBatch } from './core/ports/cluster.js';
export type { SessionState, QueuedDelivery, Subscription as SessionSubscription, Admission } from './core/ports/session-state.js';
export type { LeaseStore, Lease } from './core/ports/leases.js';
export type { Principal, PrincipalRecord, Permission, Action, PrincipalType } from './core/ports/principal.js';
export type { ComponentHealth, ComponentReport, HealthReport, HealthStatus, ReportsHealth } from './core/health.js';
// What the core's tokens resolve to, for a plugin's constructor parameters.
export type { Authenticator } from './core/authenticator.js';
export type { MessageBus } from './core/bus.js';
export type { Endpoints } from './core/endpoints.js';
export type { Health } from './core/health.js';
export type { Ingestor } from './core/ingest.js';
export type { Logger } from './core/logger.js';
export type { Presence } from './core/presence.js';
export type { PrincipalEvents } from './core/principal-events.js';
export type { DeadLetters } from './core/dead-letters.js';
export type { Devices } from './core/devices.js';
export type { PasswordHasher } from './core/password-hasher.js';
export type { SinkRunner } from './core/sink-runner.js';
// In-memory adapters: for an application's own tests, and as the simplest models of the ports.
export { MemoryRegistry, MemoryStore } from './adapters/memory/index.js';
