import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import { NitrogenError } from './errors.js';
import { duration, durationAtLeast } from './duration.js';
import { CredentialsOptions } from './authenticator.js';
import { QuotaOptions } from './ingest-quota.js';


const component = z.strictObject({
  use: z.string().min(1),
  options: z.record(z.string(), z.unknown()).default({}),
});

const sink = z.strictObject({
  use: z.string().min(1),
  /** Names the sink's checkpoint and metrics; defaults to the plugin's name (with its index when repeated). */
  name: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/).optional(),
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
    })
    .default({ batchSize: 500, lingerMs: 10, retryMinMs: 100, retryMaxMs: 30_000, pollMs: 1000 }),
});

const DEFAULT_PLUGINS = [
  { use: 'mqtt', options: {} },
  { use: 'rest', options: {} },
];

/** The configuration schema documented in docs/configuration.md. */
export const ConfigSchema = z.strictObject({
  host: z.string().min(1).default('127.0.0.1'),
  dataDir: z.string().min(1).default('./data'),
  // Blank padding is no secret: 12 spaces would pass a plain length check.
  adminSecret: z.string().refine((s) => s.trim().length >= 12, 'must hold at least 12 characters besides surrounding whitespace').optional(),
  /** `store`: acknowledge after the store commit; `sink`: after the sinks accepted (no store). */
  ack: z.enum(['store', 'sink']).default('store'),
  store: component.default({ use: 'sqlite', options: {} }),
  registry: component.default({ use: 'sqlite', options: {} }),
  identity: component.default({ use: 'default', options: {} }),
  sinks: z.array(sink).default([]),
  plugins: z.array(component).default(DEFAULT_PLUGINS),
  limits: z
    .strictObject({
      maxMessageBytes: z.number().int().positive().default(256 * 1024),
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
  /** Per-principal ingestion quota (core/ingest-quota.ts). */
  quota: QuotaOptions.default(QuotaOptions.parse({})),
  retention: z
    .strictObject({ ttl: duration.optional(), purgeInterval: duration.refine((v) => durationAtLeast(v, 1000), 'must be at least 1s').default('1m') })
    .default({ purgeInterval: '1m' }),
  log: z.strictObject({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') }).default({ level: 'info' }),
}).superRefine((config, ctx) => {
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

/** Validates a configuration object; the error names every bad field by its path. */
export function parseConfig(input: unknown, source = 'configuration'): NitrogenConfig {
  const result = ConfigSchema.safeParse(input ?? {});
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => `${issue.path.length ? issue.path.join('.') : '(root)'}: ${issue.message}`);
  throw new NitrogenError('NITROGEN_ERR_CONFIG', `invalid ${source}: ${problems.join('; ')}`, { details: { problems } });
}

function portFromEnv(name: string, value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new NitrogenError('NITROGEN_ERR_CONFIG', `${name}: must be a port number 0-65535, got '${value}'`);
  }
  return port;
}

function withPluginPort(plugins: NitrogenConfigInput['plugins'], use: string, port: number): NitrogenConfigInput['plugins'] {
  if (!Array.isArray(plugins)) return plugins; // left for validation to report
  return plugins.map((p) => (p?.use === use ? { ...p, options: { ...p.options, port } } : p));
}

/**
 * Reads `nitrogen.config.json` from the working directory (or the file named by
 * NITROGEN_CONFIG), applies the environment overrides of docs/configuration.md and validates.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): NitrogenConfig {
  const file = env.NITROGEN_CONFIG ? resolve(cwd, env.NITROGEN_CONFIG) : resolve(cwd, 'nitrogen.config.json');
  let input: NitrogenConfigInput = {};
  if (existsSync(file)) {
    try {
      input = JSON.parse(readFileSync(file, 'utf8')) as NitrogenConfigInput;
    } catch (err) {
      throw new NitrogenError('NITROGEN_ERR_CONFIG', `${file}: ${(err as Error).message}`, { cause: err });
    }
  } else if (env.NITROGEN_CONFIG) {
    throw new NitrogenError('NITROGEN_ERR_CONFIG', `NITROGEN_CONFIG: no file at ${file}`);
  }
  if (input.plugins === undefined) input = { ...input, plugins: DEFAULT_PLUGINS };
  if (env.NITROGEN_HOST) input.host = env.NITROGEN_HOST;
  if (env.NITROGEN_DATA_DIR) input.dataDir = env.NITROGEN_DATA_DIR;
  if (env.NITROGEN_ADMIN_SECRET) input.adminSecret = env.NITROGEN_ADMIN_SECRET;
  if (env.NITROGEN_LOG_LEVEL) input.log = { level: env.NITROGEN_LOG_LEVEL as 'info' };
  if (env.NITROGEN_MQTT_PORT) input.plugins = withPluginPort(input.plugins, 'mqtt', portFromEnv('NITROGEN_MQTT_PORT', env.NITROGEN_MQTT_PORT));
  if (env.NITROGEN_REST_PORT) input.plugins = withPluginPort(input.plugins, 'rest', portFromEnv('NITROGEN_REST_PORT', env.NITROGEN_REST_PORT));
  const config = parseConfig(input, existsSync(file) ? file : 'configuration');
  return { ...config, dataDir: resolve(cwd, config.dataDir) };
}
