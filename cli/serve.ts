import { defaultCatalog } from '../catalog.js';
import type { AdminSecretSource } from '../core/bootstrap.js';
import { readConfigInput } from '../core/config.js';
import { isNitrogenError } from '../core/errors.js';
import { createLogger } from '../core/logger.js';
import { checkConfig } from '../core/preflight.js';
import { NitrogenServer } from '../core/server.js';

/**
 * `nitrogen serve` and `npm start`: the server with the configuration of docs/configuration.md (the embedded default when
 * there is none). The whole configuration, plugins included, is checked before anything is
 * written. SIGTERM and SIGINT stop it gracefully: it turns unready, transports stop accepting,
 * in-flight commits finish, stores close.
 */
async function serve(): Promise<void> {
  const { input, source, problems } = readConfigInput();
  const config = await checkConfig(input, defaultCatalog, source, problems);
  const logger = createLogger(config.log.level);
  const server = new NitrogenServer(config, { catalog: defaultCatalog, logger });
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    server.stop().then(
      () => process.exit(0),
      (err) => {
        logger.error({ err }, 'stop failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));

  await server.start();
  const lines = [
    'Nitrogen is running',
    `  REST: ${server.endpoints.rest ?? '(disabled)'}`,
    `  MQTT: ${server.endpoints.mqtt ?? '(disabled)'}`,
    `  portal: ${server.endpoints.portal ?? '(disabled)'}`,
    `  data: ${config.dataDir}`,
    `  admin: ${adminBanner(server.adminSecret)}`,
  ];
  process.stdout.write(lines.join('\n') + '\n');
}

/** Where the admin secret is, as the bootstrap found it: never a file that does not hold it. */
function adminBanner(source: AdminSecretSource | undefined): string {
  switch (source?.kind) {
    case 'generated':
      return `principal id "admin", secret written to ${source.file}`;
    case 'file':
      return `principal id "admin", secret in ${source.file} (written at the first start)`;
    case 'configured':
      return 'principal id "admin", secret from NITROGEN_ADMIN_SECRET or adminSecret in the configuration';
    default:
      return 'principal id "admin", secret set earlier (by configuration or through the API); set NITROGEN_ADMIN_SECRET to replace it';
  }
}

/** A NitrogenError is the user's to fix: its code and every problem, one a line; anything else is a bug: its stack. */
function explain(err: unknown): string {
  if (!isNitrogenError(err)) return (err as Error)?.stack ?? String(err);
  const { problems, source } = err.details ?? {};
  if (Array.isArray(problems) && problems.length > 1) return `${err.code}: ${problems.length} problems in ${String(source)}:\n${problems.map((p) => `  - ${p}`).join('\n')}`;
  return `${err.code}: ${err.message}`;
}

/** Starts the server; a configuration or start that fails is explained on stderr and exits 1, as `npm start` always did. */
export function serveOrExit(): Promise<void> {
  return serve().catch((err: unknown) => {
    process.stderr.write(`nitrogen failed to start: ${explain(err)}\n`);
    process.exit(1);
  });
}
