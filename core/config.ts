import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import { NitrogenError } from './errors.js';
import { duration, durationAtLeast } from './duration.js';
import { CredentialsOptions } from './authenticator.js';
import { QuotaOptions } from './ingest-quota.js';
import { DeviceOptions } from './device-options.js';
import { describeIssues, problemsError } from './problems.js';

export const ComponentSchema = z.strictObject({
  use: z.string().min(1),
  options: z.record(z.string(), z.unknown()).default({}),
});

export const SinkSchema = z.strictObject({
  use: z.string().min(1),
  /** Names the sink's checkpoint and metrics; defaults to the plugin's name (with its index when repeated). */
  name: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,64}$/)
    .optional(),
  filter: z.strictObject({ type: z.array(z.string()).optional(), from: z.array(z.string()).optional() }).default({}),
  options: z.record(z.string(), z.unknown()).default({}),
  /** How the sink is fed from the store (core/sink-runner.ts). */
  delivery: z
    .strictObject({
      batchSize: z.number().int().positive().max(10_000).default(500),
      lingerMs: z.number().int().min(0).max(10_000).default(10),
      retryMinMs: z.number().int().positive().default(100),
      retryMaxMs: z.number().int().positive().default(30_000),
      pollMs: z.number().int().positive().default(1000),
      /** Batches sent and not yet accepted, at most; the checkpoint moves over them in feed order. */
      inFlight: z.number().int().min(1).max(64).default(4),
      /** The checkpoint is written at most this often: a crash re-sends what was accepted since (at-least-once). */
      checkpointMs: z.number().int().min(10).max(60_000).default(500),
      /** How often the lag is measured, for /health and the lag bound. */
      lagCheckMs: z.number().int().min(100).max(60_000).default(1000),
      /** Lag bounds (docs/sinks.md, "Backpressure"): past either, the sink is degraded on /health. */
      maxLagMessages: z.number().int().positive().optional(),
      maxLagSeconds: z.number().positive().optional(),
      /** `report`: past a lag bound, say so (health, metrics). `slow-acks`: also hold acknowledgements back, so devices buffer. */
      backpressure: z.enum(['report', 'slow-acks']).default('report'),
      /** `worker`: a sink whose plugin allows it runs in a delivery worker thread of its own; `main`: on the ingest thread. */
      thread: z.enum(['worker', 'main']).default('worker'),
      /** On a cluster with a bus: the feed split by sender into this many units, each leased to one instance (core/sink-leases.ts). */
      partitions: z.number().int().min(1).max(1024).default(1),
    })
    .default({ batchSize: 500, lingerMs: 10, retryMinMs: 100, retryMaxMs: 30_000, pollMs: 1000, inFlight: 4, checkpointMs: 500, lagCheckMs: 1000, backpressure: 'report', thread: 'worker', partitions: 1 }),
});

/**
 * What an instance serves (docs/cluster.md, "Roles"): `ingestion` takes messages (MQTT PUBLISH,
 * REST POST /messages) and serves devices their commands, `registry` principals, permissions
 * and authentication, `consumption` queries, SSE streams and MQTT subscriptions to others'
 * messages. Every instance runs all three unless told otherwise.
 */
const ROLES = ['ingestion', 'registry', 'consumption'] as const;
export type Role = (typeof ROLES)[number];

export const ClusterSchema = z.strictObject({
  /** Names this instance on the bus, in logs and in presence; made once into `<dataDir>/instance.id` when absent (core/services.ts). */
  instanceId: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1-64 of A-Z a-z 0-9 . _ -')
    .optional(),
  roles: z
    .array(z.enum(ROLES))
    .min(1)
    .refine((roles) => new Set(roles).size === roles.length, 'must not repeat a role')
    .default([...ROLES]),
  /** The bus the instances share (`{ "use": "redis", "options": { "url": … } }`); without it the instance is alone. */
  bus: ComponentSchema.optional(),
  /** How long a sink partition's lease lasts without renewal: a dead owner's partitions move within 4/3 of it (core/sink-leases.ts). */
  sinkLeaseTtl: duration.refine((v) => durationAtLeast(v, 300), 'must be at least 300ms').default('10s'),
});

const DEFAULT_PLUGINS = [
  { use: 'mqtt', options: {} },
  { use: 'rest', options: {} },
  // After rest, which serves it (docs/portal.md).
  { use: 'portal', options: {} },
];

/** The configuration schema documented in docs/configuration.md. */
export const ConfigSchema = z
  .strictObject({
    host: z.string().min(1).default('127.0.0.1'),
    dataDir: z.string().min(1).default('./data'),
    // Blank padding is no secret: 12 spaces would pass a plain length check.
    adminSecret: z
      .string()
      .refine((s) => s.trim().length >= 12, 'must hold at least 12 characters besides surrounding whitespace')
      .optional(),
    /** `store`: acknowledge after the store commit; `sink`: after the sinks accepted (no store). */
    ack: z.enum(['store', 'sink']).default('store'),
    store: ComponentSchema.default({ use: 'sqlite', options: {} }),
    registry: ComponentSchema.default({ use: 'sqlite', options: {} }),
    identity: ComponentSchema.default({ use: 'default', options: {} }),
    sinks: z.array(SinkSchema).default([]),
    plugins: z.array(ComponentSchema).default(DEFAULT_PLUGINS),
    limits: z
      .strictObject({
        maxMessageBytes: z
          .number()
          .int()
          .positive()
          .default(256 * 1024),
        maxBatch: z.number().int().positive().default(1000),
        /** Query `limit` default and cap (docs/api.md). */
        defaultQueryLimit: z.number().int().positive().default(100),
        maxQueryLimit: z.number().int().positive().default(1000),
        /** Deepest JSON nesting accepted; at most 1,000, well inside what JSON.stringify's stack encodes. */
        maxJsonDepth: z.number().int().min(1).max(1000).default(64),
      })
      .default({ maxMessageBytes: 256 * 1024, maxBatch: 1000, defaultQueryLimit: 100, maxQueryLimit: 1000, maxJsonDepth: 64 })
      .refine((limits) => limits.defaultQueryLimit <= limits.maxQueryLimit, { message: 'must not exceed maxQueryLimit', path: ['defaultQueryLimit'] }),
    ingest: z
      .strictObject({
        /** Most messages waiting for or in a commit; beyond it REST answers 503 and MQTT waits. */
        maxPending: z.number().int().positive().default(100_000),
        /** Most messages in one store commit. */
        maxCommitBatch: z.number().int().positive().default(5_000),
      })
      .default({ maxPending: 100_000, maxCommitBatch: 5_000 }),
    /** Failed-credential limits, trusted proxies and password hashing (core/authenticator.ts). */
    credentials: CredentialsOptions.default(CredentialsOptions.parse({})),
    /** Onboarding, presence and device state (core/device-options.ts). */
    devices: DeviceOptions.default(DeviceOptions.parse({})),
    /** Per-principal ingestion quota (core/ingest-quota.ts). */
    quota: QuotaOptions.default(QuotaOptions.parse({})),
    retention: z.strictObject({ ttl: duration.optional(), purgeInterval: duration.refine((v) => durationAtLeast(v, 1000), 'must be at least 1s').default('1m') }).default({ purgeInterval: '1m' }),
    /** Several instances as one service (docs/cluster.md). */
    cluster: ClusterSchema.default({ roles: [...ROLES], sinkLeaseTtl: '10s' }),
    log: z.strictObject({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') }).default({ level: 'info' }),
    /** How often components are probed for GET /ready, and how long a probe may take before it counts as down. */
    health: z
      .strictObject({
        probeInterval: duration.refine((v) => durationAtLeast(v, 10), 'must be at least 10ms').default('5s'),
        probeTimeout: duration.refine((v) => durationAtLeast(v, 10), 'must be at least 10ms').default('2s'),
      })
      .default({ probeInterval: '5s', probeTimeout: '2s' }),
  })
  .superRefine((config, ctx) => {
    if (config.ack === 'store' && config.store.use === 'none') {
      ctx.addIssue({ code: 'custom', path: ['store', 'use'], message: '"none" keeps nothing, so it needs ack: "sink" (acknowledged once the sinks accepted)' });
    }
    if (config.quota.bytes.burst < config.limits.maxMessageBytes) {
      ctx.addIssue({ code: 'custom', path: ['quota', 'bytes', 'burst'], message: `must be at least limits.maxMessageBytes (${config.limits.maxMessageBytes}), or the largest message allowed could never be sent` });
    }
    if (config.ack === 'sink' && config.sinks.length === 0) {
      ctx.addIssue({ code: 'custom', path: ['ack'], message: '"sink" acknowledges once sinks accepted a message, so it needs at least one sink' });
    }
  });

export type NitrogenConfigInput = z.input<typeof ConfigSchema>;
export type NitrogenConfig = z.output<typeof ConfigSchema>;

/** Every problem of a configuration object, each naming its field; the parsed configuration when there is none. */
export function configProblems(input: unknown): { config?: NitrogenConfig; problems: string[] } {
  const result = ConfigSchema.safeParse(input ?? {});
  return result.success ? { config: result.data, problems: [] } : { problems: describeIssues(ConfigSchema, result.error.issues) };
}

/** Validates a configuration object; the error names every bad field by its path. */
export function parseConfig(input: unknown, source = 'configuration'): NitrogenConfig {
  const { config, problems } = configProblems(input);
  if (config) return config;
  throw problemsError('NITROGEN_ERR_CONFIG', source, problems);
}

function portFromEnv(name: string, value: string, problems: string[]): number | undefined {
  const port = Number(value);
  if (Number.isInteger(port) && port >= 0 && port <= 65535 && value.trim() !== '') return port;
  problems.push(`${name}: must be a port number 0-65535, got '${value}'`);
  return undefined;
}

function withPluginPort(plugins: NitrogenConfigInput['plugins'], use: string, port: number | undefined): NitrogenConfigInput['plugins'] {
  if (port === undefined || !Array.isArray(plugins)) return plugins; // left for validation to report
  return plugins.map((p) => (p?.use === use ? { ...p, options: { ...p.options, port } } : p));
}

/** Parses JSON, or says where it is broken: `file:line:column` and the line with a caret under the spot. */
function parseJsonFile(text: string, file: string): unknown {
  // A byte-order mark is not JSON, but editors write one.
  const json = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  try {
    return JSON.parse(json);
  } catch (err) {
    const message = (err as Error).message;
    const at = /at position (\d+)/.exec(message);
    const offset = at ? Number(at[1]) : json.length;
    const before = json.slice(0, offset).split('\n');
    const line = before.length;
    const column = before[before.length - 1]!.length + 1;
    const text = json.split('\n')[line - 1] ?? '';
    const reason = message.replace(/ in JSON at position \d+.*$/, '').replace(/ \(line \d+ column \d+\)$/, '');
    throw new NitrogenError('NITROGEN_ERR_CONFIG', `${file}:${line}:${column}: not valid JSON: ${reason}\n  ${text}\n  ${' '.repeat(column - 1)}^`, { cause: err, details: { line, column } });
  }
}

/** A string value that is a whole `${NAME}` reference (docs/configuration.md, "Values from the environment"). */
const ENV_REFERENCE = /^\$\{([A-Z_][A-Z0-9_]*)\}$/;

/**
 * Replaces every string of the file that is exactly `${NAME}` with that environment variable, so
 * one file serves every instance of a deployment and secrets stay out of it (a container's
 * Secret, compose's environment). Only whole strings: a `$` inside a longer value stays as written.
 * A variable that is not set is a problem, never an empty value.
 */
function substituteEnv(value: unknown, env: NodeJS.ProcessEnv, problems: string[], path = ''): unknown {
  if (typeof value === 'string') {
    const name = ENV_REFERENCE.exec(value)?.[1];
    if (name === undefined) return value;
    const found = env[name];
    if (found === undefined || found === '') problems.push(`${path || '(root)'}: refers to the environment variable ${name}, which is not set`);
    return found ?? value;
  }
  if (Array.isArray(value)) return value.map((v, i) => substituteEnv(v, env, problems, `${path}[${i}]`));
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substituteEnv(v, env, problems, path ? `${path}.${k}` : k)]));
  }
  return value;
}

/** The environment variables `readConfigInput` reads besides the file's `${NAME}` references (docs/configuration.md). */
export const ENVIRONMENT_VARIABLES = ['NITROGEN_CONFIG', 'NITROGEN_HOST', 'NITROGEN_DATA_DIR', 'NITROGEN_ADMIN_SECRET', 'NITROGEN_LOG_LEVEL', 'NITROGEN_MQTT_PORT', 'NITROGEN_REST_PORT'] as const;

/** The configuration before validation: the file (if any) with the environment applied, and the problems of the environment. */
export interface ConfigInput {
  input: NitrogenConfigInput;
  /** The file read, or "configuration" when there is none. */
  source: string;
  problems: string[];
}

/**
 * Reads `nitrogen.config.json` from the working directory (or the file named by
 * NITROGEN_CONFIG) and applies the environment overrides of docs/configuration.md. A file that
 * is missing (when named) or is not JSON throws; problems of the environment are returned, to
 * be reported with those of the file.
 */
export function readConfigInput(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): ConfigInput {
  const file = env.NITROGEN_CONFIG ? resolve(cwd, env.NITROGEN_CONFIG) : resolve(cwd, 'nitrogen.config.json');
  let input: NitrogenConfigInput = {};
  if (existsSync(file)) {
    input = parseJsonFile(readFileSync(file, 'utf8'), file) as NitrogenConfigInput;
    // Not an object: left for validation to report.
    if (typeof input !== 'object' || input === null || Array.isArray(input)) return { input, source: file, problems: [] };
  } else if (env.NITROGEN_CONFIG) {
    throw new NitrogenError('NITROGEN_ERR_CONFIG', `NITROGEN_CONFIG: no file at ${file}`);
  }
  const problems: string[] = [];
  input = substituteEnv(input, env, problems) as NitrogenConfigInput;
  if (input.plugins === undefined) input = { ...input, plugins: DEFAULT_PLUGINS };
  if (env.NITROGEN_HOST) input.host = env.NITROGEN_HOST;
  if (env.NITROGEN_DATA_DIR) input.dataDir = env.NITROGEN_DATA_DIR;
  if (env.NITROGEN_ADMIN_SECRET) input.adminSecret = env.NITROGEN_ADMIN_SECRET;
  if (env.NITROGEN_LOG_LEVEL) input.log = { level: env.NITROGEN_LOG_LEVEL as 'info' };
  if (env.NITROGEN_MQTT_PORT) input.plugins = withPluginPort(input.plugins, 'mqtt', portFromEnv('NITROGEN_MQTT_PORT', env.NITROGEN_MQTT_PORT, problems));
  if (env.NITROGEN_REST_PORT) input.plugins = withPluginPort(input.plugins, 'rest', portFromEnv('NITROGEN_REST_PORT', env.NITROGEN_REST_PORT, problems));
  return { input, source: existsSync(file) ? file : 'configuration', problems };
}

/**
 * `readConfigInput` then validation: the configuration `npm start` runs with. Plugin options are
 * checked when the server starts (or all at once by `checkConfig` in core/preflight.ts).
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): NitrogenConfig {
  const { input, source, problems } = readConfigInput(env, cwd);
  const checked = configProblems(input);
  if (problems.length > 0 || !checked.config) throw problemsError('NITROGEN_ERR_CONFIG', source, [...problems, ...checked.problems]);
  return { ...checked.config, dataDir: resolve(cwd, checked.config.dataDir) };
}
