import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { DependencyContainer, InjectionToken } from 'tsyringe';
import type { Registry as MetricsRegistry } from 'prom-client';
import type { ZodType } from 'zod';
import type { NitrogenConfig } from './config.js';
import { NitrogenError } from './errors.js';
import { describeIssues } from './problems.js';
import type { Logger } from './logger.js';
import { tokenName } from './tokens.js';

/** The slot a plugin fills: one of the ports, a sink, or a transport on the server's surface. */
export type PluginKind = 'store' | 'registry' | 'identity' | 'sink' | 'transport';

export interface PluginContext {
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
export interface Plugin<Options = unknown> {
  name: string;
  kind: PluginKind;
  description?: string;
  options?: ZodType<Options>;
  needs?: InjectionToken<unknown>[];
  /** Returns the component: a port implementation, a Sink, or a transport; its start/stop are called by the server. */
  create(context: PluginContext, options: Options): object | Promise<object>;
}

export function definePlugin<Options>(plugin: Plugin<Options>): Plugin<Options> {
  return plugin;
}

/** Built-in plugins by kind and `use` name, loaded lazily so unused adapters cost nothing. */
export type PluginCatalog = Partial<Record<PluginKind, Record<string, () => Promise<Plugin<any>>>>>;

/**
 * Finds the plugin for a `use` value: a catalog name, else a module path (relative to the
 * working directory) or package name whose default export (or `plugin` export) is a Plugin.
 */
export async function resolvePlugin(kind: PluginKind, use: string, catalog: PluginCatalog, where: string, cwd = process.cwd()): Promise<Plugin<any>> {
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
      const message = missing
        ? `${where}: unknown ${kind} '${use}' (built in: ${known}; or give a module path or an installed package)`
        : `${where}: cannot load '${use}': ${(err as Error).message}`;
      throw new NitrogenError('NITROGEN_ERR_PLUGIN', message, { cause: err });
    }
  }
  const candidate = plugin as Partial<Plugin>;
  if (!candidate || typeof candidate.create !== 'function' || typeof candidate.name !== 'string') {
    throw new NitrogenError('NITROGEN_ERR_PLUGIN', `${where}: '${use}' does not export a plugin (an object with name, kind and create)`);
  }
  if (candidate.kind !== kind) {
    throw new NitrogenError('NITROGEN_ERR_PLUGIN', `${where}: '${use}' is a ${candidate.kind} plugin, not a ${kind}`);
  }
  return candidate as Plugin<any>;
}

/**
 * Checks a plugin's needs and options without creating anything: returns the parsed options,
 * the needs nothing provides, and the problems of the options, each naming the entry
 * (`plugins.0.options.port: …`).
 */
export function checkPlugin(plugin: Plugin<any>, isProvided: (token: InjectionToken<unknown>) => boolean, options: unknown, where: string): { options: unknown; missing: string[]; problems: string[] } {
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
