import type { Writable } from 'node:stream';
import { createServer, defaultCatalog, type NitrogenConfigInput } from 'nitrogen';
import { logSinkPlugin } from './log-sink.js';

/**
 * A Nitrogen server composed in code: the embedded default (SQLite, MQTT, REST) plus a custom
 * sink plugin added to the catalog under the name `log`, and selected in the configuration.
 */
export function basicServer(overrides: NitrogenConfigInput = {}, out: Writable = process.stdout) {
  return createServer(
    {
      dataDir: './data',
      sinks: [{ use: 'log', filter: { type: ['telemetry'] }, options: { prefix: '[telemetry]' } }],
      ...overrides,
    },
    { catalog: { ...defaultCatalog, sink: { ...defaultCatalog.sink, log: async () => logSinkPlugin(out) } } },
  );
}

// Run directly: `node dist/samples/basic-server/server.js`
if (import.meta.url === `file://${process.argv[1]}`) {
  const server = basicServer();
  await server.start();
  console.log(`basic-server: REST ${server.endpoints.rest}, MQTT ${server.endpoints.mqtt}`);
  if (server.adminSecretFile) console.log(`admin secret in ${server.adminSecretFile}`);
  const stop = () => void server.stop().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
