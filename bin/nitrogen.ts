#!/usr/bin/env node
import { defaultCatalog } from '../catalog.js';
import { loadConfig } from '../core/config.js';
import { isNitrogenError } from '../core/errors.js';
import { createLogger } from '../core/logger.js';
import { NitrogenServer } from '../core/server.js';

/**
 * `npm start`: the server with the configuration of docs/configuration.md (the embedded default when
 * there is none). SIGTERM and SIGINT stop it gracefully: transports stop accepting, in-flight
 * commits finish, stores close.
 */
async function main(): Promise<void> {
  const config = loadConfig();
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
    `  data: ${config.dataDir}`,
    server.adminSecretFile
      ? `  admin secret: written to ${server.adminSecretFile} (principal id "admin")`
      : `  admin: principal id "admin", secret ${config.adminSecret ? 'from NITROGEN_ADMIN_SECRET' : `in ${config.dataDir}/admin.secret (from the first start)`}`,
  ];
  process.stdout.write(lines.join('\n') + '\n');
}

main().catch((err: unknown) => {
  const message = isNitrogenError(err) ? `${err.code}: ${err.message}` : (err as Error).stack ?? String(err);
  process.stderr.write(`nitrogen failed to start: ${message}\n`);
  process.exit(1);
});
