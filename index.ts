/**
 * Nitrogen's public API: compose a server in code (`createServer(config, { catalog: defaultCatalog })`),
 * write plugins against the ports, and reuse the built-in adapters.
 */
export { defaultCatalog } from './catalog.js';
export { createServer, NitrogenServer, type ServerOptions } from './core/server.js';
export { loadConfig, parseConfig, type NitrogenConfig, type NitrogenConfigInput } from './core/config.js';
export { definePlugin, type Plugin, type PluginCatalog, type PluginContext, type PluginKind } from './core/plugin.js';
export { Tokens } from './core/tokens.js';
export { ErrorCodes, NitrogenError, isNitrogenError, type ErrorCode } from './core/errors.js';
export type { Message } from './core/message.js';
export type { Identity, AccessToken } from './core/ports/identity.js';
export type { Registry } from './core/ports/registry.js';
export type { Store, MessageQuery } from './core/ports/store.js';
export type { Sink, SinkFilter } from './core/ports/sink.js';
export type { Lifecycle, Page } from './core/ports/lifecycle.js';
export type { Principal, Permission, Action, PrincipalType } from './core/ports/principal.js';
