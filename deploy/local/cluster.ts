import { startTopology } from './topology.js';

/**
 * `npm run cluster [-- --instances N]`: the topology of deploy/compose.yaml as local processes
 * (deploy/local/topology.ts) until Ctrl-C, which stops the front door, then the instances
 * (SIGTERM: each turns unready and finishes its in-flight commits), then Redis and PostgreSQL.
 */
async function main(): Promise<void> {
  const at = process.argv.indexOf('--instances');
  const instances = at >= 0 ? Number(process.argv[at + 1]) : 3;
  if (!Number.isInteger(instances) || instances < 1 || instances > 32) throw new Error('--instances: a whole number from 1 to 32');
  const topology = await startTopology({ instances, echo: true, logLevel: process.env.NITROGEN_LOG_LEVEL ?? 'info' });
  process.stdout.write(
    [
      `Nitrogen cluster of ${instances} behind nginx`,
      `  MQTT: ${topology.frontMqtt}`,
      `  REST: ${topology.frontRest}/api/v1`,
      `  admin: principal id "admin", secret ${topology.adminSecret}`,
      ...topology.instances.map((x) => `  ${x.id}: REST ${x.rest}, MQTT ${x.mqtt}`),
      `  redis: ${topology.redis.url}`,
      `  postgres: ${topology.postgres.url()}`,
      'Ctrl-C stops everything.',
    ].join('\n') + '\n',
  );
  let stopping = false;
  const shutdown = () => {
    if (stopping) return;
    stopping = true;
    process.stdout.write('stopping: instances drain, then Redis and PostgreSQL stop\n');
    // Graceful first (each instance turns unready and finishes in-flight commits), then the rest.
    Promise.all(topology.instances.map((x) => x.kill('SIGTERM')))
      .then(() => topology.stop())
      .then(
        () => process.exit(0),
        (err: unknown) => {
          process.stderr.write(`${(err as Error).stack}\n`);
          process.exit(1);
        },
      );
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
}

main().catch((err: unknown) => {
  process.stderr.write(`cluster failed to start: ${(err as Error).message}\n`);
  process.exit(1);
});
