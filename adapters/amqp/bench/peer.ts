// The peer of the send benchmark, in its own process so the client under test
// does not share its event loop: a rhea listener that accepts every message.
// argv: link credit it grants, then "nodelay" or "delay" for its sockets'
// TCP_NODELAY (rhea's default is off). Reports its port over IPC.
import type { AddressInfo, Server } from 'node:net';
import rhea from 'rhea';

const credit = Number(process.argv[2] ?? 5000);
const noDelay = (process.argv[3] ?? 'nodelay') === 'nodelay';
const container = rhea.create_container({ id: 'bench-peer' });
let received = 0;
container.on('receiver_open', (ctx) => ctx.receiver!.set_target({ address: ctx.receiver!.remote.attach.target?.address }));
container.on('message', () => {
  received++;
});
const server = container.listen({ port: 0, host: '127.0.0.1', credit_window: credit, autoaccept: true, tcp_no_delay: noDelay } as never) as unknown as Server;
server.on('listening', () => process.send!({ port: (server.address() as AddressInfo).port }));
process.on('message', (m: { stats?: boolean }) => {
  if (m.stats) process.send!({ received });
});
process.on('disconnect', () => process.exit(0));
