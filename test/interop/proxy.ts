// A TCP proxy between the client and a broker that a test can cut, to drop
// connections the way a network or broker failure would.
import net from 'node:net';

export class CuttableProxy {
  private readonly sockets = new Set<net.Socket>();
  private server!: net.Server;
  port = 0;

  static async start(target: { host: string; port: number }): Promise<CuttableProxy> {
    const p = new CuttableProxy();
    p.server = net.createServer((client) => {
      const upstream = net.connect(target);
      for (const s of [client, upstream]) { p.sockets.add(s); s.on('error', () => undefined); s.on('close', () => p.sockets.delete(s)); }
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => p.server.listen(0, '127.0.0.1', resolve));
    p.port = (p.server.address() as net.AddressInfo).port;
    return p;
  }

  /** Destroys every proxied connection (the client sees its socket drop). */
  cut(): void { for (const s of this.sockets) s.destroy(); }

  async stop(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
