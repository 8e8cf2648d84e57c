import { connect } from 'node:net';
import { ClientError, badOption } from '../errors.js';
import type { StreamOpener } from '../mqtt/connection.js';

/**
 * Every connection of the process reads into this one buffer (Node's `onread`): a read is
 * handled before the next one, so the packet reader copies only what it must keep, and a
 * PUBACK costs no allocation. A device has one connection; a simulator of thousands of cars
 * saves a Buffer and the stream machinery per packet.
 */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

/** MQTT over TCP (`mqtt://host:port`, port 1883 by default). */
export function tcpOpener(url: URL): StreamOpener {
  // TLS (`mqtts://`) and WebSockets come with the server's support for them: an opener each, beside this one.
  if (url.protocol !== 'mqtt:') throw badOption('mqtt', `${url.protocol}// is not supported yet: only mqtt:// (TCP)`);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = url.port ? Number(url.port) : 1883;
  return ({ onData, onClose }) => {
    let failure: Error | null = null;
    const socket = connect({
      host,
      port,
      noDelay: true,
      onread: { buffer: READ_BUFFER, callback: (n: number, buf: Uint8Array) => (onData((buf as Buffer).subarray(0, n)), true) },
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      failure = new ClientError('NITROGEN_CLIENT_UNREACHABLE', `${url.protocol}//${url.host}: ${err.code ?? err.message}`, undefined, undefined, { cause: err });
    });
    socket.on('close', () => onClose(failure));
    return {
      write: (bytes) => void socket.write(bytes),
      end: () => void socket.end(),
      destroy: () => void socket.destroy(),
    };
  };
}
