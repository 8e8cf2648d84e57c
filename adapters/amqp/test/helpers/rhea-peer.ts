// An in-process AMQP peer for the tests: a small store-and-forward broker
// built on rhea. Messages sent to an address are queued there and delivered
// to receivers attached to that address. Hooks let a test decide outcomes,
// credit, detaches and socket drops.
import type { AddressInfo, Server } from 'node:net';
import rhea, { type Connection as RheaConnection, type EventContext, type Sender as RheaSender } from 'rhea';

export interface PeerOptions {
  /** Require SASL PLAIN with these credentials. */
  plain?: { user: string; pass: string };
  maxFrameSize?: number;
  /** The peer's idle-time-out (ms), sent in its open. */
  idleTimeout?: number;
  /** Credit the peer grants each sender; 0 = none until grant(). */
  creditWindow?: number;
  /** Listen with TLS using this key and certificate (PEM). */
  tls?: { key: string; cert: string };
}

export type Outcome = 'accept' | 'reject' | 'release' | 'modify' | 'none';

export class RheaPeer {
  readonly container = rhea.create_container({ id: 'rhea-peer' });
  readonly queues = new Map<string, unknown[]>();
  /** Every message received, by target address, in arrival order. */
  readonly received = new Map<string, Array<Record<string, unknown>>>();
  readonly connections = new Set<RheaConnection>();
  /** Decides the outcome of each incoming message (default accept). */
  outcome: (message: Record<string, unknown>, address: string) => Outcome = () => 'accept';
  /** Called when a link attaches; return an error to refuse/detach it right away. */
  onLinkOpen: (ctx: EventContext, address: string) => void = () => undefined;
  url = '';
  private server!: Server;

  static async start(options: PeerOptions = {}): Promise<RheaPeer> {
    const peer = new RheaPeer();
    await peer.listen(options);
    return peer;
  }

  private async listen(o: PeerOptions): Promise<void> {
    const c = this.container;
    if (o.plain) {
      const { user, pass } = o.plain;
      c.sasl_server_mechanisms.enable_plain((u: string, p: string) => u === user && p === pass);
    }
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
      const address = ctx.receiver!.remote.attach.target?.address as string;
      ctx.receiver!.set_target({ address });
      this.onLinkOpen(ctx, address);
    });
    c.on('sender_open', (ctx) => {
      const address = ctx.sender!.remote.attach.source?.address as string;
      ctx.sender!.set_source({ address });
      this.onLinkOpen(ctx, address);
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
          ctx.delivery!.reject({ condition: 'amqp:precondition-failed', description: 'rejected by test peer' });
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
    const listenOptions: Record<string, unknown> = {
      port: 0,
      host: '127.0.0.1',
      autoaccept: false,
      credit_window: o.creditWindow ?? 1000,
      max_frame_size: o.maxFrameSize ?? 4294967295,
      container_id: 'rhea-peer',
    };
    if (o.idleTimeout) listenOptions.idle_time_out = o.idleTimeout;
    if (o.tls) Object.assign(listenOptions, { transport: 'tls', key: o.tls.key, cert: o.tls.cert });
    this.server = c.listen(listenOptions as unknown as Parameters<typeof c.listen>[0]);
    await new Promise<void>((resolve) => this.server.once('listening', resolve));
    const port = (this.server.address() as AddressInfo).port;
    this.url = `${o.tls ? 'amqps' : 'amqp'}://127.0.0.1:${port}`;
  }

  /** Queues a message for receivers of `address`. */
  enqueue(address: string, message: Record<string, unknown>): void {
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
