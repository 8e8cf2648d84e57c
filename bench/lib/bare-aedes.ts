import { Aedes } from 'aedes';
import { createServer, type AddressInfo } from 'node:net';

/** The peer: aedes with its defaults (in-memory persistence, no authentication), nothing added. */
const broker = await Aedes.createBroker();
const server = createServer(broker.handle);
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`PORT ${(server.address() as AddressInfo).port}\n`);
});
process.on('SIGTERM', () => server.close(() => broker.close(() => process.exit(0))));
