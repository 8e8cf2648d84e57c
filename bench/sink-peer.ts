// The downstream of `npm run bench:sink`, in a process of its own so that it does not share the
// server's event loop: `amqp` is a rhea listener that accepts everything (credit 5,000,
// TCP_NODELAY, as bench/amqp-peer.ts); `eventhubs` is the test Event Hubs peer
// (bench/lib/eventhubs-peer.ts: CBS, SAS tokens, batch messages) in its counting mode.
// It counts the messages it accepts and times them: now minus the message's creation-time,
// which the sinks set to the envelope's `ts`, the moment the server took the PUBLISH. Batch
// messages are counted by their data sections; one event in 16 is decoded to be timed.
// argv: amqp|eventhubs [port]. Protocol over IPC: it sends { port, connectionString? } once listening; answers { stats }
// with { received, distinct, latenciesMs } (latencies since the last `mark`; distinct: amqp only).
import type { AddressInfo, Server } from 'node:net';
import rhea, { type Message } from 'rhea';
import { BATCH_FORMAT, EventHubsPeer } from './lib/eventhubs-peer.js';

const mode = process.argv[2] === 'eventhubs' ? 'eventhubs' : 'amqp';
/** A port chosen beforehand (the backlog scenario configures the sink before its peer runs), else a free one. */
const port = Number(process.argv[3] ?? 0);
let received = 0;
let latencies: number[] = [];
/** The `amqp` peer also keeps every message-id (the envelope id): distinct messages, and so duplicates. */
const ids = new Set<unknown>();
let sampled = 0;

function time(message: Message): void {
  const created = message.creation_time as Date | number | undefined;
  if (created !== undefined) latencies.push(Date.now() - Number(created));
}

if (mode === 'amqp') {
  const container = rhea.create_container({ id: 'bench-sink-peer' });
  container.on('disconnected', () => undefined); // a server killed mid-stream (the +kill scenario)
  container.on('receiver_open', (ctx) => ctx.receiver!.set_target({ address: ctx.receiver!.remote.attach.target?.address }));
  container.on('message', (ctx) => {
    received++;
    ids.add(ctx.message!.message_id);
    time(ctx.message);
  });
  const server = container.listen({ port, host: '127.0.0.1', credit_window: 5000, autoaccept: true, tcp_no_delay: true } as never) as unknown as Server;
  server.on('listening', () => process.send!({ port: (server.address() as AddressInfo).port }));
} else {
  const peer = await EventHubsPeer.start({
    port,
    tally(format, message) {
      if (format !== BATCH_FORMAT) {
        received++;
        time(rhea.message.decode(message as Buffer) as unknown as Message);
        return;
      }
      const envelope = rhea.message.decode(message as Buffer) as unknown as Message;
      const body = envelope.body as { multiple?: boolean; content: Buffer | Buffer[] };
      const sections = body.multiple ? (body.content as Buffer[]) : [body.content as Buffer];
      for (const bytes of sections) {
        received++;
        if (sampled++ % 16 === 0) time(rhea.message.decode(Buffer.from(bytes)) as unknown as Message);
      }
    },
  });
  process.send!({ port: peer.port, connectionString: peer.connectionString() });
}

process.on('message', (m: { op: string }) => {
  if (m.op === 'mark') latencies = [];
  if (m.op === 'stats') process.send!({ received, distinct: ids.size, latenciesMs: latencies });
});
process.on('disconnect', () => process.exit(0));
