import { Aedes } from 'aedes';
import { readFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';

/**
 * The peer: aedes with its defaults (in-memory persistence, no authentication), nothing added;
 * over TLS with BENCH_TLS_CERT and BENCH_TLS_KEY (PEM files), as node's tls module does by default.
 */
const broker = await Aedes.createBroker();
const tls = process.env.BENCH_TLS_CERT && process.env.BENCH_TLS_KEY ? { cert: readFileSync(process.env.BENCH_TLS_CERT), key: readFileSync(process.env.BENCH_TLS_KEY) } : undefined;
const server = tls ? createTlsServer(tls, broker.handle) : createServer(broker.handle);
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`PORT ${(server.address() as AddressInfo).port}\n`);
});
process.on('SIGTERM', () => server.close(() => broker.close(() => process.exit(0))));
