import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Registry as MetricsRegistry } from 'prom-client';
import type { ZodType } from 'zod';
import type { NitrogenConfig, Role } from './config.js';
import type { DependencyContainer, InjectionToken } from './di.js';
import { NitrogenError } from './errors.js';
import { describeIssues } from './problems.js';
import type { Logger } from './logger.js';
import type { Cluster } from './ports/cluster.js';
import type { Identity } from './ports/identity.js';
import type { Registry } from './ports/registry.js';
import type { Sink } from './ports/sink.js';
import type { Store } from './ports/store.js';
import { tokenName } from './tokens.js';

/**
 * A transport puts the server on a protocol: `start()` listens, `stop()` stops accepting and
 * closes its connections (the group commit then finishes what was accepted).
 */
export interface Transport {
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** What a plugin of each kind creates: the compiler holds `create` to it. */
export interface PluginComponents {
  store: Store;
  registry: Registry;
  identity: Identity;
  sink: Sink;
  transport: Transport;
  /** `cluster.bus`: what the instances of a deployment share (core/ports/cluster.ts). */
  cluster: Cluster;
}

/** The slot a plugin fills: one of the ports, a sink, or a transport on the server's surface. */
export type PluginKind = keyof PluginComponents;

export interface PluginContext {
  /**
   * This plugin instance's own container, a child of the server's: it resolves every token the
   * server provided before this slot, plus `Tokens.Logger` (this instance's logger) and
   * `Tokens.PluginName`. Resolve the component's class from it (constructor injection), after
   * registering what only this instance knows, such as its options.
   */
  container: DependencyContainer;
  config: NitrogenConfig;
  logger: Logger;
  metrics: MetricsRegistry;
  /** Absolute data directory; it exists when plugins are created. */
  dataDir: string;
  /** The instance name: the sink's configured name, or else the plugin's name. */
  name: string;
}

/**
 * A plugin: metadata plus a factory. The server checks the metadata when it registers the
 * plugin (fastify's idea): the kind must fit the slot, `needs` must already be provided and
 * the options must pass `options`, whose errors name the bad field.
 */
export interface Plugin<K extends PluginKind = PluginKind, Options = unknown> {
  name: string;
  kind: K;
  description?: string;
  options?: ZodType<Options>;
  needs?: InjectionToken<unknown>[];
  /**
   * For a transport: the roles it serves (`cluster.roles`); an instance that runs none of them
   * does not start it. Without it, it runs on every instance.
   */
  roles?: readonly Role[];
  /**
   * For a sink: where a delivery worker thread finds this plugin (a module URL and its export),
   * to create the sink there, off the ingest thread (docs/sinks.md, "Delivery threads"). The
   * sink then gets a logger and a metrics registry of the worker's own, and must not need the
   * container. Without it, the sink runs on the main thread.
   */
  deliveryWorker?: { module: string; exportName: string };
  /** Returns the component of its kind; the server calls its start/stop. */
  create(context: PluginContext, options: Options): PluginComponents[K] | Promise<PluginComponents[K]>;
}

/** Types a plugin by its `kind` and `options` schema, so `create` must return that kind's component. */
export function definePlugin<K extends PluginKind, Options = unknown>(plugin: Plugin<K, Options>): Plugin<K, Options> {
  return plugin;
}

/** Built-in plugins by kind and `use` name, loaded lazily so unused adapters cost nothing. */
export type PluginCatalog = { [K in PluginKind]?: Record<string, () => Promise<Plugin<K, any>>> };

/** A catalog is typed, but a module (or a JavaScript caller) can hand over anything: checked here, once. */
function assertPluginOf<K extends PluginKind>(value: unknown, kind: K, where: string, use: string): asserts value is Plugin<K, any> {
  const candidate = value as Partial<Plugin> | null | undefined;
  if (!candidate || typeof candidate.create !== 'function' || typeof candidate.name !== 'string') {
    throw new NitrogenError('NITROGEN_ERR_PLUGIN', `${where}: '${use}' does not export a plugin (an object with name, kind and create)`);
  }
  if (candidate.kind !== kind) {
    throw new NitrogenError('NITROGEN_ERR_PLUGIN', `${where}: '${use}' is a ${candidate.kind} plugin, not a ${kind}`);
  }
}

/**
 * Finds the plugin for a `use` value: a catalog name, else a module path (relative to the
 * working directory) or package name whose default export (or `plugin` export) is a Plugin.
 */
export async function resolvePlugin<K extends PluginKind>(kind: K, use: string, catalog: PluginCatalog, where: string, cwd = process.cwd()): Promise<Plugin<K, any>> {
  const builtIn = catalog[kind]?.[use];
  let plugin: unknown;
  if (builtIn) {
    plugin = await builtIn();
  } else {
    // Not built in: a module path (relative to the working directory) or a package name.
    const specifier = use.startsWith('.') || isAbsolute(use) ? pathToFileURL(resolve(cwd, use)).href : use;
    try {
      const mod = (await import(specifier)) as { default?: unknown; plugin?: unknown };
      plugin = mod.default ?? mod.plugin;
    } catch (err) {
      const missing = (err as { code?: string }).code === 'ERR_MODULE_NOT_FOUND' && !use.startsWith('.') && !isAbsolute(use) && (err as Error).message.includes(`'${use}'`);
      const known = Object.keys(catalog[kind] ?? {}).join(', ') || 'none';
      const message = missing ? `${where}: unknown ${kind} '${use}' (built in: ${known}; or give a module path or an installed package)` : `${where}: cannot load '${use}': ${(err as Error).message}`;
      throw new NitrogenError('NITROGEN_ERR_PLUGIN', message, { cause: err });
    }
  }
  assertPluginOf(plugin, kind, where, use);
  return plugin;
}

/**
 * Checks a plugin's needs and options without creating anything: returns the parsed options,
 * the needs nothing provides, and the problems of the options, each naming the entry
 * (`plugins.0.options.port: …`).
 */
export function checkPlugin(plugin: Plugin<PluginKind, any>, isProvided: (token: InjectionToken<unknown>) => boolean, options: unknown, where: string): { options: unknown; missing: string[]; problems: string[] } {
  // What the plugin needs is a fault of the plugin or of its place, not of the options.
  const missing = (plugin.needs ?? []).filter((token) => !isProvided(token)).map((token) => `${where}: plugin '${plugin.name}' needs ${tokenName(token)}, which nothing provides before it`);
  if (!plugin.options) return { options, missing, problems: [] };
  try {
    const parsed = plugin.options.safeParse(options ?? {});
    if (parsed.success) return { options: parsed.data, missing, problems: [] };
    return { options, missing, problems: describeIssues(plugin.options, parsed.error.issues, [...where.split('.'), 'options']) };
  } catch (err) {
    // A schema whose own code throws still gets the entry named.
    return { options, missing, problems: [`${where}.options: ${(err as Error).message}`] };
  }
}
