import net from 'node:net';

/**
 * A TCP relay between a client and a broker that a test can cut (drop every connection, as a
 * network failure would), close (cut, and refuse new connections, as a broker outage would)
 * and open again.
 */
export class CuttableProxy {
  private readonly sockets = new Set<net.Socket>();
  private server!: net.Server;
  private refusing = false;
  port = 0;

  static async start(target: { host: string; port: number }): Promise<CuttableProxy> {
    const p = new CuttableProxy();
    p.server = net.createServer((client) => {
      if (p.refusing) return void client.destroy();
      const upstream = net.connect(target);
      for (const s of [client, upstream]) {
        p.sockets.add(s);
        s.on('error', () => undefined);
        s.on('close', () => p.sockets.delete(s));
      }
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => p.server.listen(0, '127.0.0.1', resolve));
    p.port = (p.server.address() as net.AddressInfo).port;
    return p;
  }

  /** Destroys every proxied connection (the client sees its socket drop). */
  cut(): void {
    for (const s of this.sockets) s.destroy();
  }

  /** Cuts, and refuses new connections until `open`. */
  close(): void {
    this.refusing = true;
    this.cut();
  }

  open(): void {
    this.refusing = false;
  }

  async stop(): Promise<void> {
    this.close();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
