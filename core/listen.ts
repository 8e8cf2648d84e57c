import type { Server } from 'node:net';
import type { AddressInfo } from 'node:net';

/** Listens on `port` (0: any free port) and `host`; resolves with the port bound, rejects on error. */
export function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** `scheme://host:port` with an IPv6 host in brackets. */
export function endpointUrl(scheme: string, host: string, port: number): string {
  return `${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}`;
}
