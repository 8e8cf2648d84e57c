import { ClusterSchema, ComponentSchema, ConfigSchema, SinkSchema, configProblems, type NitrogenConfig } from './config.js';
import { isNitrogenError } from './errors.js';
import { DefaultIdentity, DefaultIdentityOptions } from './default-identity.js';
import type { InjectionToken } from './di.js';
import { checkPlugin, definePlugin, resolvePlugin, type Plugin, type PluginCatalog, type PluginKind } from './plugin.js';
import { problemsError } from './problems.js';
import { Tokens } from './tokens.js';

/**
 * The check before anything starts (docs/configuration.md, "Validation"): every `use` is
 * resolved and every plugin's needs and options are checked, before the server writes a
 * file to the data directory. All problems are reported at once.
 */

/** One configured plugin, resolved and with its options parsed (by its own schema: typed only inside the plugin). */
export interface PlannedPlugin<K extends PluginKind = PluginKind> {
  kind: K;
  /** The entry's path in the configuration: `store`, `sinks.1`, `plugins.0`. */
  where: string;
  use: string;
  plugin: Plugin<K, any>;
  options: unknown;
  /** The instance name: a sink's `name`, else `{plugin}-{index}` for a repeated sink, else the plugin's. */
  name: string;
}

export interface Plan {
  store: PlannedPlugin<'store'>;
  registry: PlannedPlugin<'registry'>;
  identity: PlannedPlugin<'identity'>;
  sinks: PlannedPlugin<'sink'>[];
  transports: PlannedPlugin<'transport'>[];
  /** The configured `cluster.bus`, if any. */
  cluster?: PlannedPlugin<'cluster'>;
}

type Entry = { kind: PluginKind; where: string; use: string; options: unknown; name?: string };

const CORE = [Tokens.Config, Tokens.Logger, Tokens.Metrics, Tokens.Endpoints, Tokens.WebApps, Tokens.PrincipalEvents, Tokens.Health, Tokens.Instance];
/** What the server has registered when it creates each kind of plugin (docs/plugins.md, "Dependency injection"). */
const PROVIDED_BEFORE: Record<PluginKind, InjectionToken<unknown>[]> = {
  cluster: CORE,
  store: [...CORE, Tokens.Cluster],
  registry: [...CORE, Tokens.Cluster, Tokens.Store],
  identity: [...CORE, Tokens.Cluster, Tokens.Store, Tokens.Registry, Tokens.PasswordHasher],
  sink: [...CORE, Tokens.Cluster, Tokens.Store, Tokens.Registry, Tokens.PasswordHasher, Tokens.Identity, Tokens.Authenticator, Tokens.Presence, Tokens.Principals, Tokens.PermissionRecords, Tokens.Devices],
  transport: [
    ...CORE,
    Tokens.Cluster,
    Tokens.Store,
    Tokens.Registry,
    Tokens.PasswordHasher,
    Tokens.Identity,
    Tokens.Authenticator,
    Tokens.Presence,
    Tokens.Principals,
    Tokens.PermissionRecords,
    Tokens.Devices,
    Tokens.Sinks,
    Tokens.Bus,
    Tokens.Ingestor,
    Tokens.SinkRunners,
    Tokens.DeadLetters,
  ],
};

function entries(config: Partial<Pick<NitrogenConfig, 'store' | 'registry' | 'identity' | 'sinks' | 'plugins' | 'cluster'>>): Entry[] {
  const slots: Entry[] = [];
  const bus = config.cluster?.bus;
  if (bus) slots.push({ kind: 'cluster', where: 'cluster.bus', use: bus.use, options: bus.options });
  for (const kind of ['store', 'registry', 'identity'] as const) {
    const entry = config[kind];
    if (entry) slots.push({ kind, where: kind, use: entry.use, options: entry.options });
  }
  config.sinks?.forEach((entry, i) => entry && slots.push({ kind: 'sink', where: `sinks.${i}`, use: entry.use, options: entry.options, name: entry.name }));
  config.plugins?.forEach((entry, i) => entry && slots.push({ kind: 'transport', where: `plugins.${i}`, use: entry.use, options: entry.options }));
  return slots;
}

/**
 * Resolves and checks every plugin of a configuration. `isProvided` answers for tokens the
 * embedding application registered itself (a parent container).
 */
export async function planPlugins(
  config: Parameters<typeof entries>[0],
  catalog: PluginCatalog,
  isProvided: (token: InjectionToken<unknown>) => boolean = () => false,
): Promise<{ plan?: Plan; problems: string[]; onlyPluginFaults: boolean }> {
  const uses = entries(config);
  // Per entry, so problems come in configuration order although plugins load at once.
  const planned: Array<PlannedPlugin | undefined> = [];
  const problems: string[][] = uses.map(() => []);
  // Plugins that cannot be found or loaded, or that need what nothing provides: NITROGEN_ERR_PLUGIN when alone.
  let pluginFaults = 0;
  await Promise.all(
    uses.map(async (entry, i) => {
      let plugin: Plugin<PluginKind, any>;
      try {
        plugin = await resolvePlugin(entry.kind, entry.use, catalog, entry.where);
      } catch (err) {
        problems[i]!.push(isNitrogenError(err) ? err.message : `${entry.where}: ${(err as Error).message}`);
        pluginFaults++;
        return;
      }
      const provided = new Set(PROVIDED_BEFORE[entry.kind]);
      const checked = checkPlugin(plugin, (token) => provided.has(token) || isProvided(token), entry.options, entry.where);
      problems[i]!.push(...checked.missing, ...checked.problems);
      pluginFaults += checked.missing.length;
      planned[i] = { kind: entry.kind, where: entry.where, use: entry.use, plugin, options: checked.options, name: entry.name ?? plugin.name };
    }),
  );
  nameSinks(planned, uses, problems);
  const found = problems.flat();
  if (found.length > 0) return { problems: found, onlyPluginFaults: found.length === pluginFaults };
  // resolvePlugin checked that each plugin's kind is its entry's.
  const byKind = <K extends PluginKind>(kind: K) => planned.filter((p): p is PlannedPlugin<K> => p?.kind === kind);
  const plan: Plan = { store: byKind('store')[0]!, registry: byKind('registry')[0]!, identity: byKind('identity')[0]!, sinks: byKind('sink'), transports: byKind('transport') };
  const cluster = byKind('cluster')[0];
  if (cluster) plan.cluster = cluster;
  return { plan, problems: [], onlyPluginFaults: false };
}

/** Unnamed sinks whose `use` repeats are `{plugin}-{index}`; two sinks may not share a name (it keys the checkpoint). */
function nameSinks(planned: Array<PlannedPlugin | undefined>, uses: Entry[], problems: string[][]): void {
  const taken = new Map<string, string>();
  uses.forEach((entry, i) => {
    const sink = planned[i];
    if (entry.kind !== 'sink' || !sink) return;
    const repeated = uses.filter((other) => other.kind === 'sink' && other.use === entry.use).length > 1;
    if (entry.name === undefined && repeated) sink.name = `${sink.plugin.name}-${entry.where.split('.')[1]}`;
    const first = taken.get(sink.name);
    if (first) problems[i]!.push(`${entry.where}.name: '${sink.name}' is also the name of ${first}; each sink needs its own (it names its checkpoint)`);
    else taken.set(sink.name, entry.where);
  });
}

/** The plugin slots of a raw configuration that are well-formed on their own, so their plugins can be checked too. */
function wellFormedSlots(input: unknown): Parameters<typeof entries>[0] {
  const raw = (typeof input === 'object' && input !== null ? input : {}) as Record<string, unknown>;
  const one = (value: unknown) => {
    const parsed = ComponentSchema.optional().safeParse(value);
    return parsed.success ? parsed.data : undefined;
  };
  const list = <T>(value: unknown, schema: { safeParse(v: unknown): { success: boolean; data?: T } }): T[] | undefined => (Array.isArray(value) ? value.map((item) => schema.safeParse(item).data as T) : undefined);
  const defaults = ConfigSchema.parse({});
  return {
    store: raw.store === undefined ? defaults.store : one(raw.store),
    registry: raw.registry === undefined ? defaults.registry : one(raw.registry),
    identity: raw.identity === undefined ? defaults.identity : one(raw.identity),
    sinks: list(raw.sinks, SinkSchema),
    plugins: raw.plugins === undefined ? defaults.plugins : list(raw.plugins, ComponentSchema),
    cluster: ClusterSchema.safeParse(raw.cluster ?? {}).data,
  };
}

/**
 * Validates a whole configuration, plugins included, and reports every problem at once:
 * those of the configuration object, of the environment (`extra`), and of each plugin entry
 * that is well-formed enough to be checked. Throws `NITROGEN_ERR_CONFIG` (`NITROGEN_ERR_PLUGIN`
 * when the only problems are plugins that cannot be loaded or need what nothing provides);
 * returns the parsed configuration.
 */
export async function checkConfig(input: unknown, catalog: PluginCatalog, source = 'configuration', extra: string[] = []): Promise<NitrogenConfig> {
  const { config, problems } = configProblems(input);
  const plugins = await planPlugins(config ?? wellFormedSlots(input), withDefaultIdentity(catalog));
  const all = [...extra, ...problems, ...plugins.problems];
  if (all.length === 0) return config!;
  throw problemsError(extra.length + problems.length === 0 && plugins.onlyPluginFaults ? 'NITROGEN_ERR_PLUGIN' : 'NITROGEN_ERR_CONFIG', source, all);
}

/** The default Identity is part of the core: it needs nothing but the Registry port. */
const defaultIdentityPlugin = definePlugin({
  name: 'default',
  kind: 'identity',
  options: DefaultIdentityOptions,
  needs: [Tokens.Registry, Tokens.PasswordHasher],
  create: ({ container, dataDir, logger }, options) => new DefaultIdentity(container.resolve(Tokens.Registry), options, dataDir, logger, container.resolve(Tokens.PasswordHasher)),
});

/** The catalog with the core's `default` identity, unless the catalog brings its own. */
export function withDefaultIdentity(catalog: PluginCatalog): PluginCatalog {
  return { ...catalog, identity: { default: async () => defaultIdentityPlugin, ...catalog.identity } };
}
