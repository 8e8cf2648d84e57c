// The broker the sink tests forward to: a small in-process store-and-forward
// AMQP 1.0 broker on rhea. Messages sent to an address are queued there and
// delivered to receivers attached to that address; a hook decides each
// message's outcome, and the broker can drop every connection as a crash would.
import type { AddressInfo, Server } from 'node:net';
import rhea, { type Connection as RheaConnection, type Sender as RheaSender } from 'rhea';

export type Outcome = 'accept' | 'reject' | 'release' | 'modify' | 'none';

export class RheaBroker {
  readonly container = rhea.create_container({ id: 'rhea-broker' });
  /** Every message received, by target address, in arrival order. */
  readonly received = new Map<string, Array<Record<string, unknown>>>();
  /** Decides the outcome of each incoming message (default accept). */
  outcome: (message: Record<string, unknown>, address: string) => Outcome = () => 'accept';
  url = '';
  private readonly queues = new Map<string, unknown[]>();
  private readonly connections = new Set<RheaConnection>();
  private server!: Server;

  static async start(): Promise<RheaBroker> {
    const broker = new RheaBroker();
    await broker.listen();
    return broker;
  }

  private async listen(): Promise<void> {
    const c = this.container;
    c.on('connection_open', (ctx) => {
      this.connections.add(ctx.connection);
    });
    c.on('disconnected', (ctx) => {
      this.connections.delete(ctx.connection);
    });
    c.on('connection_close', (ctx) => {
      this.connections.delete(ctx.connection);
    });
    c.on('receiver_open', (ctx) => {
      ctx.receiver!.set_target({ address: ctx.receiver!.remote.attach.target?.address });
    });
    c.on('sender_open', (ctx) => {
      const address = ctx.sender!.remote.attach.source?.address as string;
      ctx.sender!.set_source({ address });
      this.deliver(address);
    });
    c.on('sendable', (ctx) => this.deliver(ctx.sender!.source.address as string));
    c.on('message', (ctx) => {
      const address = ctx.receiver!.target.address as string;
      const message = ctx.message as unknown as Record<string, unknown>;
      const list = this.received.get(address) ?? [];
      list.push(message);
      this.received.set(address, list);
      switch (this.outcome(message, address)) {
        case 'accept':
          this.enqueue(address, message);
          ctx.delivery!.accept();
          break;
        case 'reject':
          ctx.delivery!.reject({ condition: 'amqp:precondition-failed', description: 'rejected by test broker' });
          break;
        case 'release':
          ctx.delivery!.release();
          break;
        case 'modify':
          ctx.delivery!.modified({ delivery_failed: true, undeliverable_here: true });
          break;
        case 'none':
          break;
      }
    });
    const options = { port: 0, host: '127.0.0.1', autoaccept: false, credit_window: 1000, container_id: 'rhea-broker' };
    this.server = c.listen(options as unknown as Parameters<typeof c.listen>[0]);
    await new Promise<void>((resolve) => this.server.once('listening', resolve));
    this.url = `amqp://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  private enqueue(address: string, message: Record<string, unknown>): void {
    const q = this.queues.get(address) ?? [];
    q.push(message);
    this.queues.set(address, q);
    this.deliver(address);
  }

  private deliver(address: string): void {
    const q = this.queues.get(address);
    if (!q) return;
    for (const conn of this.connections) {
      (conn as unknown as { each_sender(action: (l: RheaSender) => void): void }).each_sender((link) => {
        if (link.source?.address !== address || !link.is_open()) return;
        while (q.length > 0 && link.sendable()) link.send(q.shift() as never);
      });
    }
  }

  /** Destroys every client socket, as a crashing broker would. */
  dropConnections(): void {
    for (const conn of this.connections) (conn as unknown as { socket: { destroy(): void } }).socket.destroy();
    this.connections.clear();
  }

  async stop(): Promise<void> {
    this.dropConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
