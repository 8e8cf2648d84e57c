import { once } from 'node:events';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';

/** Packets a client sent, split by their fixed header (MQTT 3.1.1 §2.2). */
function splitter(onPacket: (type: number, body: Buffer) => void): (chunk: Buffer) => void {
  let pending = Buffer.alloc(0);
  return (chunk) => {
    pending = Buffer.concat([pending, chunk]);
    for (;;) {
      let length = 0;
      let i = 1;
      for (let multiplier = 1; i < pending.length; multiplier *= 128) {
        const byte = pending[i++]!;
        length += (byte & 0x7f) * multiplier;
        if (!(byte & 0x80)) break;
      }
      if (pending.length < 2 || i + length > pending.length) return;
      onPacket(pending[0]! >> 4, pending.subarray(i, i + length));
      pending = pending.subarray(i + length);
    }
  };
}

/** CONNACK with `returnCode` (§3.2.2.3), session present 0. */
export const connack = (returnCode: number) => Buffer.from([0x20, 2, 0, returnCode]);
export const CONNACK_OK = connack(0);

/** An MQTT server on port 0 that plays `script` on each connection; `connections` counts them. */
export async function scriptedServer(script: (socket: Socket, packet: number, body: Buffer, n: number) => void): Promise<{ url: string; server: Server; connections: () => number }> {
  let count = 0;
  const server = createServer((socket) => {
    const n = ++count;
    socket.on('error', () => {});
    socket.on(
      'data',
      splitter((type, body) => script(socket, type, body, n)),
    );
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { url: `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`, server, connections: () => count };
}
