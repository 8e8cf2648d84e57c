import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createTcpServer, type Server, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { createWebSocketStream, WebSocketServer } from 'ws';
import { endpointUrl, listen } from '../../core/listen.js';
import type { TlsFiles } from '../../core/tls.js';
import type { MqttOptions } from './options.js';

/** How a connection reached the broker: what presence reports and what authenticates it besides a password. */
export interface Peer {
  transport: 'mqtt' | 'mqtts' | 'mqtt-ws' | 'mqtt-wss';
  remoteAddress?: string;
  /** The client certificate (DER) a TLS client presented, unverified: core/certificates.ts decides. */
  certificate?: Buffer;
}

/** The time a TLS handshake may take: a peer that stalls in it holds a socket and a context unauthenticated. */
const HANDSHAKE_TIMEOUT_MS = 10_000;
/** What a WebSocket message may carry beyond the largest MQTT packet: its own framing. */
const WS_FRAME_SLACK = 64;

function peerCertificate(socket: TLSSocket): Buffer | undefined {
  const raw = socket.getPeerCertificate().raw;
  return raw && raw.length > 0 ? raw : undefined;
}

/**
 * The MQTT listeners: plain TCP (`port`), TLS (`tlsPort`), WebSockets (`wsPort`) and WebSockets
 * over TLS (`wssPort`), each handing every connection, as a byte stream, to `accept` with where
 * it came from. TLS listeners ask for a client certificate and accept a connection without one
 * (`requestCert`, not `rejectUnauthorized`): whether a certificate stands for a device is the
 * registry's to say, not a CA file's, so it can be registered and revoked at run time.
 * Each listener holds at most `maxConnections`.
 */
export class Listeners {
  private readonly servers: Array<Server | HttpServer> = [];
  private readonly webSockets: WebSocketServer[] = [];

  constructor(
    private readonly options: MqttOptions,
    private readonly tls: TlsFiles | undefined,
    private readonly accept: (stream: Duplex, peer: Peer) => void,
    private readonly dropped: () => void,
  ) {}

  /** Listens on every configured port; returns the endpoints by name (`mqtt`, `mqtts`, `mqttWs`, `mqttWss`). */
  async start(host: string): Promise<Record<string, string>> {
    const { options, tls } = this;
    const endpoints: Record<string, string> = {};
    if (options.port !== false) {
      const server = this.track(createTcpServer((socket) => this.accept(socket, { transport: 'mqtt', remoteAddress: socket.remoteAddress })));
      endpoints.mqtt = endpointUrl('mqtt', host, await listen(server, options.port, host));
    }
    if (options.tlsPort !== undefined && tls) {
      const server = createTlsServer({ ...tls.secureContext, requestCert: true, rejectUnauthorized: false, handshakeTimeout: HANDSHAKE_TIMEOUT_MS }, (socket) =>
        this.accept(socket, { transport: 'mqtts', remoteAddress: socket.remoteAddress, certificate: peerCertificate(socket) }),
      );
      tls.watch((context) => server.setSecureContext(context));
      this.track(server);
      endpoints.mqtts = endpointUrl('mqtts', host, await listen(server, options.tlsPort, host));
    }
    if (options.wsPort !== undefined) {
      endpoints.mqttWs = endpointUrl('ws', host, await listen(this.webSocketServer(createHttpServer(), 'mqtt-ws'), options.wsPort, host)) + options.wsPath;
    }
    if (options.wssPort !== undefined && tls) {
      const server = createHttpsServer({ ...tls.secureContext, requestCert: true, rejectUnauthorized: false, handshakeTimeout: HANDSHAKE_TIMEOUT_MS });
      tls.watch((context) => server.setSecureContext(context));
      endpoints.mqttWss = endpointUrl('wss', host, await listen(this.webSocketServer(server, 'mqtt-wss'), options.wssPort, host)) + options.wsPath;
    }
    return endpoints;
  }

  private track<S extends Server | HttpServer>(server: S): S {
    // Counted before any byte is read, authenticated or not: the cap holds against a flood.
    server.maxConnections = this.options.maxConnections;
    server.on('drop', this.dropped);
    this.servers.push(server);
    return server;
  }

  /** MQTT over WebSockets: binary messages carry the MQTT byte stream; the `mqtt` subprotocol is chosen when offered. */
  private webSocketServer(server: HttpServer, transport: 'mqtt-ws' | 'mqtt-wss'): HttpServer {
    this.track(server);
    const wss = new WebSocketServer({
      server,
      path: this.options.wsPath,
      maxPayload: this.options.maxPacketBytes + WS_FRAME_SLACK,
      handleProtocols: (protocols) => (protocols.has('mqtt') ? 'mqtt' : protocols.has('mqttv3.1') ? 'mqttv3.1' : false),
    });
    wss.on('connection', (ws, req) => {
      const socket = req.socket as Socket & Partial<TLSSocket>;
      const peer: Peer = { transport, remoteAddress: socket.remoteAddress };
      if (transport === 'mqtt-wss' && socket.getPeerCertificate) peer.certificate = peerCertificate(socket as TLSSocket);
      const stream = createWebSocketStream(ws);
      // A protocol error of the peer (a text frame, a message over maxPayload) ends its connection only.
      stream.on('error', () => stream.destroy());
      this.accept(stream, peer);
    });
    this.webSockets.push(wss);
    return server;
  }

  /** Stops accepting; resolves when every listener closed (connections are ended by the caller). */
  async stop(): Promise<void> {
    for (const wss of this.webSockets) for (const client of wss.clients) client.terminate();
    await Promise.all(
      this.servers.map((server) => {
        (server as HttpServer).closeAllConnections?.();
        return new Promise<void>((resolve) => server.close(() => resolve()));
      }),
    );
  }
}
