// Tools for the sink interop scenarios (test/interop/sinks.interop.ts): devices publishing
// under load, an independent rhea consumer at the broker, a gate that cuts the network
// between Nitrogen and a broker, and RabbitMQ's own stop_app/start_app.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { connectAsync, type MqttClient } from 'mqtt';
import rhea, { type Connection, type Message as RheaMessage } from 'rhea';

/** Devices publishing QoS 1 telemetry one after another; a message counts once its PUBACK came. */
export class DeviceLoad {
  /** `device:seq` of every acknowledged message. */
  readonly acked = new Set<string>();
  private running = true;
  private readonly loops: Promise<void>[];
  private readonly clients: MqttClient[] = [];

  private constructor(mqttUrl: string, devices: Array<{ id: string; secret: string }>, startSeq: number, pauseMs: number) {
    this.loops = devices.map((d) => this.publish(mqttUrl, d, startSeq, pauseMs));
  }

  static start(mqttUrl: string, devices: Array<{ id: string; secret: string }>, options: { startSeq?: number; pauseMs?: number } = {}): DeviceLoad {
    return new DeviceLoad(mqttUrl, devices, options.startSeq ?? 0, options.pauseMs ?? 1);
  }

  private async publish(url: string, device: { id: string; secret: string }, seq: number, pauseMs: number): Promise<void> {
    const client = await connectAsync(url, { username: device.id, password: device.secret, clientId: `${device.id}-load`, reconnectPeriod: 0 });
    this.clients.push(client);
    // A killed server never answers: a publish in flight then counts as not acknowledged.
    const lost = new Promise<never>((_, reject) => client.once('close', () => reject(new Error('connection closed'))));
    lost.catch(() => undefined);
    try {
      while (this.running) {
        await Promise.race([client.publishAsync(`devices/${device.id}/messages/telemetry`, JSON.stringify({ seq }), { qos: 1 }), lost]);
        this.acked.add(`${device.id}:${seq}`);
        seq++;
        if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
      }
    } catch {
      /* the server went away: this device stops */
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
    await Promise.all(this.clients.map((c) => c.endAsync(true).catch(() => undefined)));
  }
}

/** An independent rhea consumer at the broker, reconnecting, counting what it receives by `device:seq`. */
export class Collector {
  readonly seen = new Map<string, number>();
  /** The last message received for each key, as rhea decoded it. */
  readonly messages = new Map<string, RheaMessage>();
  private readonly connection: Connection;

  constructor(url: string, address: string) {
    const u = new URL(url);
    const container = rhea.create_container({ id: `collector-${process.pid}-${Date.now()}` });
    this.connection = container.connect({
      host: u.hostname,
      port: Number(u.port),
      reconnect: true,
      initial_reconnect_delay: 100,
      max_reconnect_delay: 500,
      ...(u.username ? { username: decodeURIComponent(u.username), password: decodeURIComponent(u.password) } : {}),
    });
    this.connection.open_receiver({ source: { address }, credit_window: 500 });
    container.on('message', (ctx) => {
      const envelope = JSON.parse(Buffer.from((ctx.message!.body as { content: Buffer }).content).toString('utf8'));
      const key = `${envelope.from}:${envelope.body.seq}`;
      this.seen.set(key, (this.seen.get(key) ?? 0) + 1);
      this.messages.set(key, ctx.message);
    });
    container.on('error', () => undefined);
    container.on('disconnected', () => undefined);
  }

  /** Messages received more than once (at-least-once delivery), in total. */
  get duplicates(): number {
    let n = 0;
    for (const count of this.seen.values()) n += count - 1;
    return n;
  }

  missing(expected: Iterable<string>): string[] {
    return [...expected].filter((k) => !this.seen.has(k));
  }

  close(): void {
    this.connection.close();
  }
}

/**
 * rabbitmqctl for the node `.ci/interop-brokers.sh` started: its node name, and the port of
 * the private epmd it runs (read from that epmd's command line, as the script records its pid).
 */
export async function rabbitmqctl(...args: string[]): Promise<void> {
  const state = process.env.NITROGEN_INTEROP_DIR ?? '/tmp/nitrogen-interop';
  const epmdPid = readFileSync(`${state}/epmd.pid`, 'utf8').trim();
  const epmdPort = /-port\0(\d+)/.exec(readFileSync(`/proc/${epmdPid}/cmdline`, 'utf8'))?.[1];
  if (!epmdPort) throw new Error('cannot find the port of the interop epmd');
  await promisify(execFile)('/usr/lib/rabbitmq/bin/rabbitmqctl', args, { env: { ...process.env, RABBITMQ_NODENAME: 'nitrogen-interop@localhost', ERL_EPMD_PORT: epmdPort } });
}
