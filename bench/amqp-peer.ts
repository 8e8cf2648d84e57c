// The peer for `npm run bench:amqp`, run as a separate process so the client
// under test does not share its event loop: a rhea listener that accepts
// every message and grants generous credit. Reports its port over IPC.
import type { AddressInfo, Server } from 'node:net';
import rhea from 'rhea';

const container = rhea.create_container({ id: 'bench-peer' });
let received = 0;
container.on('receiver_open', (ctx) => ctx.receiver!.set_target({ address: ctx.receiver!.remote.attach.target?.address }));
container.on('message', () => {
  received++;
});
const server = container.listen({ port: 0, host: '127.0.0.1', credit_window: 5000, autoaccept: true, tcp_no_delay: true } as never) as unknown as Server;
server.on('listening', () => process.send!({ port: (server.address() as AddressInfo).port }));
process.on('message', (m: { stats?: boolean }) => {
  if (m.stats) process.send!({ received });
});
process.on('disconnect', () => process.exit(0));
