import { connect, isIP } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { ClientError, badOption } from '../errors.js';
import type { StreamOpener } from '../mqtt/connection.js';
import type { TlsOptions } from '../options.js';

/**
 * Every connection of the process reads into this one buffer (Node's `onread`): a read is
 * handled before the next one, so the packet reader copies only what it must keep, and a
 * PUBACK costs no allocation. A device has one connection; a simulator of thousands of cars
 * saves a Buffer and the stream machinery per packet.
 */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

/** MQTT over TCP (`mqtt://host:port`, port 1883 by default) or over TLS (`mqtts://host:port`, 8883). */
export function tcpOpener(url: URL, tlsOptions?: TlsOptions): StreamOpener {
  if (url.protocol !== 'mqtt:' && url.protocol !== 'mqtts:') throw badOption('mqtt', `${url.protocol}// is not supported: mqtt:// (TCP) or mqtts:// (TLS)`);
  const secure = url.protocol === 'mqtts:';
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = url.port ? Number(url.port) : secure ? 8883 : 1883;
  return ({ onData, onClose }) => {
    let failure: Error | null = null;
    const socket = secure
      ? // A TLSSocket decrypts into buffers of its own (no `onread`): each is handed on as it comes.
        tlsConnect({
          host,
          port,
          // [RFC 6066 §3] no server name indication for an IP address.
          servername: tlsOptions?.servername ?? (isIP(host) ? undefined : host),
          ca: tlsOptions?.ca,
          cert: tlsOptions?.cert,
          key: tlsOptions?.key,
          rejectUnauthorized: true,
        }).on('data', (chunk: Buffer) => onData(chunk))
      : connect({
          host,
          port,
          onread: { buffer: READ_BUFFER, callback: (n: number, buf: Uint8Array) => (onData((buf as Buffer).subarray(0, n)), true) },
        });
    socket.setNoDelay(true);
    socket.on('error', (err: NodeJS.ErrnoException) => {
      const reason = err.code?.startsWith('ERR_TLS') || /certificate|SSL|self.signed/i.test(err.message) ? `TLS: ${err.message}` : (err.code ?? err.message);
      failure = new ClientError('NITROGEN_CLIENT_UNREACHABLE', `${url.protocol}//${url.host}: ${reason}`, undefined, undefined, { cause: err });
    });
    socket.on('close', () => onClose(failure));
    return {
      write: (bytes) => void socket.write(bytes),
      end: () => void socket.end(),
      destroy: () => void socket.destroy(),
    };
  };
}
