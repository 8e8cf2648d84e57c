import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { CONNACK, PINGREQ, PUBACK, connectPacket, publishTemplate, readPackets } from '../../samples/car-telemetry/mqtt-wire.js';

/**
 * The MQTT load generator, run as a child process so it never shares an event loop with the
 * server it measures. It connects every client, then keeps `window` QoS 1 PUBLISHes in flight
 * per connection (or paces them to `rate` msgs/s in total), timing each PUBLISH to its PUBACK.
 * With `window` 0 the connections stay idle and only ping.
 */
export interface LoadClient {
  clientId: string;
  username?: string;
  password?: string;
  topic: string;
  /** Over TLS: the client certificate and key (PEM) it authenticates with, instead of a password. */
  cert?: string;
  key?: string;
}

export interface LoadConfig {
  host: string;
  port: number;
  clients: LoadClient[];
  /** PUBLISHes in flight per connection (at most 1000); 0 for idle connections. */
  window: number;
  /** Total msgs/s to pace to; 0 sends as fast as acknowledgements allow. */
  rate: number;
  payloads: string[];
  /**
   * Local addresses to spread connections over, each with its own ~28,000 source ports; empty
   * to let the kernel choose at connect time (fastest: it may reuse a port towards another destination).
   */
  localAddresses: string[];
  connectConcurrency: number;
  /** Connect over TLS, trusting this CA (PEM). */
  tlsCa?: string;
}

export interface LoadReport {
  /** Acknowledged in the measured window, and over the whole run (warm-up included). */
  acked: number;
  ackedTotal: number;
  sentTotal: number;
  seconds: number;
  latenciesMs: number[];
  errors: string[];
  /** Connections open now, and how long connecting them all took. */
  connected: number;
  connectSeconds: number;
}

const ID_SPACE = 1024;
const PING_EVERY_MS = 30_000; // half the CONNECT keepalive of 60 s

class Connection {
  inflight = 0;
  acked = 0;
  sent = 0;
  /** Paced mode: PUBLISHes this connection may send now (fractions accumulate). */
  tokens = Math.random(); // a random phase, so connections do not all send in the same tick
  open = true;
  private nextId = 0;
  private readonly sentAt = new Float64Array(ID_SPACE + 1);
  private pending: Buffer | null = null;
  /** PUBLISH packets for this client's topic, one per payload; made at the first send, so idle connections cost no memory for them. */
  private templates?: { packet: Buffer; packetIdOffset: number }[];

  constructor(
    readonly socket: Socket,
    private readonly topic: string,
    private readonly load: Load,
  ) {}

  onData(chunk: Buffer): void {
    const buf = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = readPackets(buf, (type, packet, start) => {
      if (type !== PUBACK) return;
      this.inflight--;
      this.acked++;
      this.load.recordAck(performance.now() - this.sentAt[packet.readUInt16BE(start)]!);
    });
    this.load.pump(this);
  }

  /** Sends `count` PUBLISHes in one write, each a copy of a template with its own packet id. */
  send(count: number): void {
    const now = performance.now();
    const templates = (this.templates ??= this.load.config.payloads.map((p) => publishTemplate(this.topic, Buffer.from(p))));
    const picked = Array.from({ length: count }, (_, k) => templates[(this.nextId + k) % templates.length]!);
    const out = Buffer.allocUnsafe(picked.reduce((sum, t) => sum + t.packet.length, 0));
    let offset = 0;
    for (const t of picked) {
      const id = (this.nextId++ % ID_SPACE) + 1;
      t.packet.copy(out, offset);
      out.writeUInt16BE(id, offset + t.packetIdOffset);
      offset += t.packet.length;
      this.sentAt[id] = now;
    }
    this.inflight += count;
    this.sent += count;
    this.socket.write(out);
  }
}

class Load {
  connections: Connection[] = [];
  running = false;
  measuring = false;
  latencies: number[] = [];
  errors: string[] = [];
  ackedAtMark = 0;
  markedAt = 0;
  connectSeconds = 0;

  constructor(readonly config: LoadConfig) {}

  recordAck(ms: number): void {
    if (this.measuring) this.latencies.push(ms);
  }

  error(message: string): void {
    if (this.errors.length < 20) this.errors.push(message);
  }

  pump(c: Connection): void {
    if (!this.running) return;
    let room = this.config.window - c.inflight;
    if (this.config.rate > 0) room = Math.min(room, Math.floor(c.tokens));
    if (room <= 0) return;
    if (this.config.rate > 0) c.tokens -= room;
    c.send(room);
  }

  async connectAll(): Promise<void> {
    const { clients, localAddresses, connectConcurrency } = this.config;
    const started = performance.now();
    let next = 0;
    const worker = async () => {
      while (next < clients.length) {
        const index = next++;
        this.connections.push(await this.open(clients[index]!, localAddresses.length ? localAddresses[index % localAddresses.length] : undefined));
      }
    };
    await Promise.all(Array.from({ length: Math.min(connectConcurrency, clients.length) }, worker));
    this.connectSeconds = (performance.now() - started) / 1000;
    // Keep the connections alive (keepalive 60 s) however long the run: idle ones only ping.
    setInterval(() => this.connections.forEach((c) => c.open && c.socket.write(PINGREQ)), PING_EVERY_MS).unref();
  }

  private open(client: LoadClient, localAddress: string | undefined): Promise<Connection> {
    return new Promise((resolve, reject) => {
      const { host, port, tlsCa } = this.config;
      const socket: Socket = tlsCa === undefined ? connect({ host, port, localAddress }) : tlsConnect({ host, port, ca: tlsCa, servername: 'localhost', ...(client.cert === undefined ? {} : { cert: client.cert, key: client.key }) });
      socket.setNoDelay(true);
      const connection = new Connection(socket, client.topic, this);
      socket.once('error', reject);
      socket.once('data', (first: Buffer) => {
        if ((first[0]! & 0xf0) !== CONNACK || first[3] !== 0) {
          reject(new Error(`${client.clientId}: CONNACK return code ${first[3]}`));
          return;
        }
        socket.off('error', reject);
        socket.on('error', (err) => this.error(`${client.clientId}: ${err.message}`));
        socket.on('close', () => {
          connection.open = false;
          if (this.running) this.error(`${client.clientId}: connection closed`);
        });
        socket.on('data', (chunk: Buffer) => connection.onData(chunk));
        resolve(connection);
      });
      socket.write(connectPacket(client.clientId, client.username, client.password));
    });
  }

  start(): void {
    this.running = true;
    if (this.config.rate > 0 && this.config.window > 0) {
      // Pace in 5 ms steps: each connection earns its share of the total rate for the time that
      // really passed (timers run late on a busy machine). A connection whose window is full
      // cannot bank more than a window's worth: the achieved rate then shows the shortfall.
      const perConnectionPerMs = this.config.rate / this.connections.length / 1000;
      let last = performance.now();
      const timer = setInterval(() => {
        if (!this.running) return clearInterval(timer);
        const now = performance.now();
        const earned = perConnectionPerMs * (now - last);
        last = now;
        for (const c of this.connections) {
          c.tokens = Math.min(c.tokens + earned, this.config.window);
          this.pump(c);
        }
      }, 5);
    } else {
      for (const c of this.connections) this.pump(c);
    }
  }

  mark(): void {
    this.ackedAtMark = this.sum((c) => c.acked);
    this.markedAt = performance.now();
    this.latencies = [];
    this.measuring = true;
  }

  report(): LoadReport {
    this.measuring = false;
    const ackedTotal = this.sum((c) => c.acked);
    return {
      acked: ackedTotal - this.ackedAtMark,
      ackedTotal,
      sentTotal: this.sum((c) => c.sent),
      seconds: (performance.now() - this.markedAt) / 1000,
      latenciesMs: this.latencies,
      errors: this.errors,
      connected: this.sum((c) => (c.open ? 1 : 0)),
      connectSeconds: this.connectSeconds,
    };
  }

  /** Stops sending, waits up to `drainMs` for outstanding PUBACKs, then closes every connection. */
  async stop(drainMs: number): Promise<void> {
    this.running = false;
    const deadline = performance.now() + drainMs;
    while (this.sum((c) => (c.open ? c.inflight : 0)) > 0 && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    for (const c of this.connections) c.socket.destroy();
  }

  private sum(f: (c: Connection) => number): number {
    let total = 0;
    for (const c of this.connections) total += f(c);
    return total;
  }
}

let load: Load | undefined;
process.on('message', async (msg: { op: string; config?: LoadConfig; drainMs?: number }) => {
  try {
    if (msg.op === 'connect') {
      load = new Load(msg.config!);
      await load.connectAll();
      process.send!({ op: 'connected', count: load.connections.length });
    } else if (msg.op === 'start') load!.start();
    else if (msg.op === 'mark') load!.mark();
    else if (msg.op === 'report') {
      const report = load!.report();
      // Percentiles here: a million latencies are too many to send over IPC.
      const sorted = Float64Array.from(report.latenciesMs).sort();
      const pick = (q: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! : NaN);
      process.send!({ op: 'report', report: { ...report, latenciesMs: [], p50: pick(0.5), p99: pick(0.99), max: sorted.length ? sorted[sorted.length - 1] : NaN } });
    } else if (msg.op === 'stop') {
      await load?.stop(msg.drainMs ?? 0);
      const final = load?.report();
      process.send!({ op: 'stopped', ackedTotal: final?.ackedTotal ?? 0, sentTotal: final?.sentTotal ?? 0 });
      process.exit(0);
    }
  } catch (err) {
    process.send!({ op: 'error', message: (err as Error).message });
  }
});
