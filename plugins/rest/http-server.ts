import { createServer, STATUS_CODES, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { SecureContextOptions } from 'node:tls';
import type { Socket } from 'node:net';
import { Gauge, type Registry as MetricsRegistry } from 'prom-client';
import { parseDuration } from '../../core/duration.js';
import { NitrogenError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { RestOptions } from './context.js';
import { ThrottledWarning } from './logging.js';

/**
 * The HTTP/1.1 server under koa, with what keeps one client from holding the server's memory,
 * descriptors or time: a connection cap answered with 503, a time limit on receiving headers and
 * on receiving a whole request (a client dripping bytes is cut off), an idle keep-alive limit,
 * and a bound on the request head. Node answers its own protocol errors (a timeout, a malformed
 * request) in plain text; here they get the API's error shape.
 */
export function createHttpServer(options: RestOptions, handler: RequestListener, logger: Logger, metrics: MetricsRegistry, tls?: SecureContextOptions): Server {
  const headersTimeout = parseDuration(options.headersTimeout);
  const requestTimeout = parseDuration(options.requestTimeout);
  // HTTPS is the same server over TLS (an https.Server is an http.Server's subclass in behaviour).
  const create = (tls ? (opts: object, listener: RequestListener) => createHttpsServer({ ...tls, ...opts }, listener) : createServer) as typeof createServer;
  const server = create(
    {
      headersTimeout,
      requestTimeout,
      maxHeaderSize: options.maxHeaderBytes,
      // Node looks for expired requests every 30 s by default, so a 10 s limit could take 40 s.
      connectionsCheckingInterval: Math.max(10, Math.min(1000, Math.floor(Math.min(headersTimeout, requestTimeout) / 4))),
    },
    (req: IncomingMessage, res: ServerResponse) => {
      // A refused connection was already answered 503: its request is read, never served.
      if (refused.has(req.socket)) req.socket.destroy();
      else handler(req, res);
    },
  );
  server.keepAliveTimeout = parseDuration(options.keepAliveTimeout);

  // One gauge for both listeners of a transport: the second finds the first one's.
  const gauge = (metrics.getSingleMetric('nitrogen_rest_connections') as Gauge | undefined) ?? new Gauge({ name: 'nitrogen_rest_connections', help: 'Open REST connections', registers: [metrics] });
  const overCap = new ThrottledWarning(logger, 'REST connections refused: maxConnections reached');
  const refused = new WeakSet<Socket>();
  let open = 0;
  let refusing = 0;
  // Ahead of node's own listener, so a refused socket is marked before its first request is parsed.
  server.prependListener('connection', (socket: Socket) => {
    if (open < options.maxConnections) {
      open++;
      gauge.inc();
      socket.once('close', () => {
        open--;
        gauge.dec();
      });
      return;
    }
    overCap.note();
    refused.add(socket);
    // Answering costs a write; beyond as many refusals again in flight, just close. Over TLS the
    // socket is not yet encrypted here: it is closed without an answer.
    if (refusing >= options.maxConnections || tls) {
      socket.destroy();
      return;
    }
    refusing++;
    socket.once('close', () => refusing--);
    socket.setTimeout(headersTimeout, () => socket.destroy());
    const error = new NitrogenError('NITROGEN_ERR_OVERLOADED', `the server holds its maximum of ${options.maxConnections} REST connections (maxConnections)`, { details: { limit: 'maxConnections' } });
    error.retryAfter = 1;
    // The answer goes out first; the socket is destroyed once the client's request head is read
    // (closing with it unread would reset the connection, and the client could lose the 503),
    // or after headersTimeout.
    socket.end(rawResponse(error));
  });

  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    logger.debug({ code: err.code }, 'REST client error');
    // As node's default handler decides: answer unless a response is already on its way on this
    // connection (its headers sent), which an answer here would corrupt.
    const inFlight = (socket as Socket & { _httpMessage?: { headersSent: boolean } | null })._httpMessage;
    if (!socket.writable || inFlight?.headersSent || err.code === 'ECONNRESET') {
      socket.destroy();
      return;
    }
    socket.end(rawResponse(protocolError(err, options, headersTimeout, requestTimeout)), () => socket.destroy());
  });
  return server;
}

function protocolError(err: NodeJS.ErrnoException, options: RestOptions, headersTimeout: number, requestTimeout: number): NitrogenError {
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    // Node does not say which of the two ran out.
    return new NitrogenError('NITROGEN_ERR_REQUEST_TIMEOUT', `the request was not received in time (headersTimeout ${headersTimeout} ms, requestTimeout ${requestTimeout} ms)`);
  }
  if (err.code === 'HPE_HEADER_OVERFLOW') {
    return new NitrogenError('NITROGEN_ERR_VALIDATION', `the request line and headers exceed ${options.maxHeaderBytes} bytes (maxHeaderBytes)`, { details: { limit: 'maxHeaderBytes' } });
  }
  return new NitrogenError('NITROGEN_ERR_VALIDATION', `the request is not valid HTTP/1.1 (${err.code ?? 'parse error'})`);
}

/** A whole response for a socket koa never sees: status line, headers, and the error shape. */
function rawResponse(error: NitrogenError): string {
  const body = JSON.stringify({ error: { code: error.code, message: error.message, ...(error.details ? { details: error.details } : {}) } });
  return (
    `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status]}\r\n` +
    'Content-Type: application/json; charset=utf-8\r\n' +
    `Content-Length: ${Buffer.byteLength(body)}\r\n` +
    (error.retryAfter === undefined ? '' : `Retry-After: ${error.retryAfter}\r\n`) +
    'Connection: close\r\n\r\n' +
    body
  );
}
