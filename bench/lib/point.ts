import { LoadGenerator, carTelemetry, sleep, type LoadResult } from './load.js';
import { MiB, fmt, ms } from './machine.js';
import { CpuMeter, loadAverage, rssBytes, type CpuShares } from './proc.js';
import type { MqttTarget } from './targets.js';

/** A server under load, measured as a process, that counts what it stored once stopped. */
export interface Target {
  name: string;
  pid: number;
  /** Stops the server (once); a Nitrogen target then counts the messages its store holds. */
  stop(): Promise<{ stored: number | null }>;
}

export interface PointSettings {
  /** Requests (MQTT: QoS 1 PUBLISHes) in flight per connection. */
  window: number;
  /** Total msgs/s to pace to; 0 for as fast as acknowledgements allow. */
  rate: number;
  warmup: number;
  seconds: number;
  /** Loopback addresses to connect from (~28,000 source ports each); empty: the kernel's choice. */
  sources: string[];
}

/** One measurement: a server under one load, with what it cost the server and the load generator. */
export interface Point {
  target: string;
  connections: number;
  settings: PointSettings;
  load: LoadResult;
  connectRate: number;
  cpu: CpuShares;
  /** Server resident memory at the end of the measured window. */
  rssMiB: number;
  loadAverage: string;
  /** Nitrogen only: messages in the store after it stopped, against those acknowledged and sent over the whole run. */
  stored: number | null;
  ackedTotal: number;
  sentTotal: number;
}

const PAYLOADS = carTelemetry(64);
/** After the window: time for outstanding acknowledgements to arrive, so the store check compares settled counts. */
const DRAIN_MS = 5_000;

/**
 * Starts the load (a worker process that connects), warms up, measures one window — the load
 * generator's figures, CPU of server, load generator and the rest of the machine, server
 * memory — then stops load and server and has the server's store counted.
 */
export async function measure(target: Target, connections: number, settings: PointSettings, startLoad: () => Promise<LoadGenerator>): Promise<Point> {
  const averageBefore = loadAverage();
  let load: LoadGenerator | undefined;
  try {
    load = await startLoad();
    const meter = new CpuMeter({ server: target.pid, load: load.pid });
    load.start();
    await sleep(settings.warmup * 1000);
    load.mark();
    meter.start();
    await sleep(settings.seconds * 1000);
    const result = await load.report();
    const cpu = meter.stop();
    const rss = rssBytes(target.pid);
    const totals = await load.stop(DRAIN_MS);
    load = undefined;
    const { stored } = await target.stop();
    return {
      target: target.name,
      connections,
      settings,
      load: result,
      connectRate: result.connected / result.connectSeconds,
      cpu,
      rssMiB: rss / MiB,
      loadAverage: averageBefore,
      stored,
      ...totals,
    };
  } finally {
    await load?.stop();
    await target.stop().catch(() => undefined);
  }
}

/** `measure` with the MQTT load generator: every client of the target publishes QoS 1 car telemetry. */
export function measureMqtt(target: MqttTarget, settings: PointSettings): Promise<Point> {
  return measure(target, target.clients.length, settings, () =>
    LoadGenerator.connect({
      host: target.host,
      port: target.port,
      clients: target.clients,
      window: settings.window,
      rate: settings.rate,
      payloads: PAYLOADS,
      localAddresses: settings.sources,
      connectConcurrency: 100,
      ...(target.tlsCa === undefined ? {} : { tlsCa: target.tlsCa }),
    }),
  );
}

/** Problems a run can see in its own figures: errors, lost connections, a store missing acknowledged messages. */
export function pointProblems(p: Point): string[] {
  const problems = p.load.errors.map((e) => `load: ${e}`);
  if (p.load.connected < p.connections) problems.push(`${p.connections - p.load.connected} connections closed during the run`);
  if (p.stored !== null && p.stored < p.ackedTotal) problems.push(`store holds ${fmt(p.stored)} messages but ${fmt(p.ackedTotal)} were acknowledged`);
  if (p.stored !== null && p.stored > p.sentTotal) problems.push(`store holds ${fmt(p.stored)} messages but only ${fmt(p.sentTotal)} were sent`);
  return problems;
}

export const POINT_HEADER = "| server | conns | in flight/conn | msgs/s | ack p50 / p99 / max ms | server cores (main thread) | load gen cores | others' cores | server RSS MiB | connects/s | load avg |";
export const POINT_RULE = '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|';

export function pointRow(p: Point): string {
  const server = p.cpu.processes.server!;
  const load = p.cpu.processes.load!;
  return (
    `| ${p.target} | ${fmt(p.connections)} | ${p.settings.window} | ${fmt(p.load.rate)} | ${ms(p.load.p50)} / ${ms(p.load.p99)} / ${ms(p.load.max)} | ` +
    `${server.cores.toFixed(2)} (${server.mainCores.toFixed(2)}) | ${load.cores.toFixed(2)} | ${p.cpu.othersCores.toFixed(2)} | ${fmt(p.rssMiB)} | ${fmt(p.connectRate)} | ${p.loadAverage} |`
  );
}

/** The store check of a Nitrogen point, in words. */
export function storeLine(p: Point): string {
  if (p.stored === null) return '';
  const ok = p.stored >= p.ackedTotal && p.stored <= p.sentTotal;
  return `store check (${p.connections} conns): ${fmt(p.sentTotal)} sent, ${fmt(p.ackedTotal)} acknowledged, ${fmt(p.stored)} stored after stop — ${ok ? 'ok (acknowledged ≤ stored ≤ sent)' : 'FAILED'}`;
}
