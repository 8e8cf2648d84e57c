import { connect, type Socket } from 'node:net';
import { CONNACK, PINGREQ, PUBACK, connectPacket, publishTemplate } from './mqtt-wire.js';

/**
 * The MQTT load generator, run as a child process so it never shares an event loop with the
 * server it measures. It connects every client, then keeps `window` QoS 1 PUBLISHes in flight
 * per connection (or paces them to `rate` msgs/s in total), timing each PUBLISH to its PUBACK.
 */
export interface LoadClient {
  clientId: string;
  username?: string;
  password?: string;
  topic: string;
}

export interface LoadConfig {
  host: string;
  port: number;
  clients: LoadClient[];
  /** PUBLISHes in flight per connection (at most 1000). */
  window: number;
  /** Total msgs/s to pace to; 0 sends as fast as acknowledgements allow. */
  rate: number;
  payloads: string[];
  /** Local addresses to spread connections over (many source ports for many connections). */
  localAddresses: string[];
  connectConcurrency: number;
}

export type LoadReport = { acked: number; seconds: number; latenciesMs: number[]; errors: string[]; connected: number };

const ID_SPACE = 1024;

class Connection {
  inflight = 0;
  acked = 0;
  private nextId = 0;
  private readonly sentAt = new Float64Array(ID_SPACE + 1);
  private pending: Buffer | null = null;
  tokens = 0;

  constructor(readonly socket: Socket, private readonly template: { packet: Buffer; packetIdOffset: number }[], private readonly load: Load) {}

  onData(chunk: Buffer): void {
    let buf = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    let offset = 0;
    while (offset + 2 <= buf.length) {
      let length = 0;
      let multiplier = 1;
      let i = offset + 1;
      let byte: number;
      do {
        if (i >= buf.length) break;
        byte = buf[i++]!;
        length += (byte & 0x7f) * multiplier;
        multiplier *= 128;
      } while (byte & 0x80);
      if (i + length > buf.length || (byte! & 0x80)) break;
      const type = buf[offset]! & 0xf0;
      if (type === PUBACK) {
        const id = buf.readUInt16BE(i);
        this.inflight--;
        this.acked++;
        this.load.recordAck(performance.now() - this.sentAt[id]!);
      } else if (type === CONNACK && buf[i + 1] !== 0) {
        this.load.error(`CONNACK refused with return code ${buf[i + 1]}`);
      }
      offset = i + length;
    }
    this.pending = offset < buf.length ? buf.subarray(offset) : null;
    this.load.pump(this);
  }

  /** Sends up to `count` PUBLISHes in one write. */
  send(count: number): void {
    if (count <= 0) return;
    const now = performance.now();
    const parts: Buffer[] = [];
    for (let k = 0; k < count; k++) {
      const t = this.template[(this.nextId + k) % this.template.length]!;
      const id = (this.nextId++ % ID_SPACE) + 1;
      const packet = Buffer.from(t.packet);
      packet.writeUInt16BE(id, t.packetIdOffset);
      this.sentAt[id] = now;
      parts.push(packet);
    }
    this.inflight += count;
    this.socket.write(parts.length === 1 ? parts[0]! : Buffer.concat(parts));
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
    if (room > 0) {
      if (this.config.rate > 0) c.tokens -= room;
      c.send(room);
    }
  }

  async connectAll(): Promise<void> {
    const { clients, localAddresses, connectConcurrency } = this.config;
    let next = 0;
    const worker = async () => {
      while (next < clients.length) {
        const index = next++;
        this.connections.push(await this.open(clients[index]!, localAddresses[index % localAddresses.length]));
      }
    };
    await Promise.all(Array.from({ length: Math.min(connectConcurrency, clients.length) }, worker));
  }

  private open(client: LoadClient, localAddress: string | undefined): Promise<Connection> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: this.config.host, port: this.config.port, localAddress });
      socket.setNoDelay(true);
      const templates = this.config.payloads.map((p) => publishTemplate(client.topic, Buffer.from(p)));
      const connection = new Connection(socket, templates, this);
      socket.once('error', reject);
      socket.once('data', (first: Buffer) => {
        if ((first[0]! & 0xf0) !== CONNACK || first[3] !== 0) {
          reject(new Error(`${client.clientId}: CONNACK return code ${first[3]}`));
          return;
        }
        socket.off('error', reject);
        socket.on('error', (err) => this.error(`${client.clientId}: ${err.message}`));
        socket.on('close', () => this.running && this.error(`${client.clientId}: connection closed`));
        socket.on('data', (chunk: Buffer) => connection.onData(chunk));
        resolve(connection);
      });
      socket.write(connectPacket(client.clientId, client.username, client.password));
    });
  }

  start(): void {
    this.running = true;
    if (this.config.rate > 0) {
      // Each connection earns its share of the total rate for the time that really passed (a
      // timer fires late on a busy machine), starting from a random fraction of a message so
      // that the connections' sends spread out instead of going in waves.
      const perConnectionPerMs = this.config.rate / this.connections.length / 1000;
      for (const c of this.connections) c.tokens = Math.random();
      let last = performance.now();
      const timer = setInterval(() => {
        if (!this.running) return clearInterval(timer);
        const now = performance.now();
        const earned = (now - last) * perConnectionPerMs;
        last = now;
        for (const c of this.connections) {
          c.tokens = Math.min(c.tokens + earned, this.config.window);
          this.pump(c);
        }
      }, 5);
    } else {
      for (const c of this.connections) this.pump(c);
    }
    // Keep idle connections alive (keepalive 60 s) during long runs.
    setInterval(() => this.connections.forEach((c) => c.socket.write(PINGREQ)), 30_000).unref();
  }

  acked(): number {
    return this.connections.reduce((sum, c) => sum + c.acked, 0);
  }

  mark(): void {
    this.ackedAtMark = this.acked();
    this.markedAt = performance.now();
    this.latencies = [];
    this.measuring = true;
  }

  report(): LoadReport {
    this.measuring = false;
    return { acked: this.acked() - this.ackedAtMark, seconds: (performance.now() - this.markedAt) / 1000, latenciesMs: this.latencies, errors: this.errors, connected: this.connections.length };
  }

  stop(): void {
    this.running = false;
    for (const c of this.connections) c.socket.destroy();
  }
}

let load: Load | undefined;
process.on('message', async (msg: { op: string; config?: LoadConfig }) => {
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
      report.latenciesMs.sort((a, b) => a - b);
      const pick = (q: number) => report.latenciesMs[Math.min(report.latenciesMs.length - 1, Math.floor(q * report.latenciesMs.length))] ?? NaN;
      process.send!({ op: 'report', report: { ...report, latenciesMs: [], p50: pick(0.5), p99: pick(0.99), max: report.latenciesMs[report.latenciesMs.length - 1] ?? NaN } });
    } else if (msg.op === 'stop') {
      load?.stop();
      process.exit(0);
    }
  } catch (err) {
    process.send!({ op: 'error', message: (err as Error).message });
  }
});
