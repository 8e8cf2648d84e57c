import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { LoadConfig, LoadReport } from './load-worker.js';

export type LoadResult = Omit<LoadReport, 'latenciesMs'> & {
  rate: number;
  p50: number;
  p99: number;
  max: number;
  /** CPU time per acknowledged message in the measured window (µs, user + system): of the server (every thread, and its main thread alone), and of the load generator. */
  serverCpuUs: number;
  serverMainCpuUs: number;
  loadCpuUs: number;
};

/** Drives a load-worker child process: connect, start, measure a window, report. */
export class LoadGenerator {
  private constructor(private readonly child: ChildProcess) {}

  private request<T>(op: string, expect: string, config?: LoadConfig): Promise<T> {
    return new Promise((resolve, reject) => {
      const onMessage = (msg: { op: string; message?: string } & T) => {
        if (msg.op === 'error') reject(new Error(msg.message));
        else if (msg.op === expect) resolve(msg);
        else return;
        this.child.off('message', onMessage);
      };
      this.child.on('message', onMessage);
      this.child.send({ op, config });
    });
  }

  static async connect(config: LoadConfig): Promise<LoadGenerator> {
    const child = fork(fileURLToPath(new URL('./load-worker.js', import.meta.url)), [], { stdio: 'inherit', execArgv: ['--max-old-space-size=4096'] });
    const generator = new LoadGenerator(child);
    await generator.request('connect', 'connected', config);
    return generator;
  }

  /**
   * Sends for `warmup` seconds unmeasured, then measures `seconds`, and the CPU the server
   * process (pid `server`, when given) uses meanwhile.
   */
  async run(warmup: number, seconds: number, server?: number): Promise<LoadResult> {
    this.child.send({ op: 'start' });
    await sleep(warmup * 1000);
    this.child.send({ op: 'mark' });
    const cpu = (pid: number | undefined, thread?: number) => (pid === undefined ? NaN : processCpu(pid, thread));
    const before = [cpu(server), cpu(server, server), cpu(this.child.pid)];
    await sleep(seconds * 1000);
    const { report } = await this.request<{ report: LoadReport & { p50: number; p99: number; max: number } }>('report', 'report');
    const perMessage = (seconds: number) => (seconds * 1e6) / Math.max(1, report.acked);
    return {
      ...report, rate: report.acked / report.seconds, serverCpuUs: perMessage(cpu(server) - before[0]!),
      serverMainCpuUs: perMessage(cpu(server, server) - before[1]!), loadCpuUs: perMessage(cpu(this.child.pid) - before[2]!),
    };
  }

  async stop(): Promise<void> {
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.send({ op: 'stop' });
    await exited;
  }
}

/**
 * CPU seconds a process (all its threads), or one of its threads, has used, user + system
 * (Linux /proc; clock ticks of 1/100 s). On a shared machine this measures work, where rates
 * also measure the neighbours.
 */
export function processCpu(pid: number, thread?: number): number {
  const stat = readFileSync(thread === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${thread}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Realistic car telemetry bodies (about 200 bytes of JSON), varied so no two are alike. */
export function carTelemetry(count: number): string[] {
  return Array.from({ length: count }, (_, i) =>
    JSON.stringify({
      speedKmh: Math.round((40 + ((i * 7.3) % 80)) * 10) / 10,
      rpm: 1500 + ((i * 137) % 3500),
      position: { lat: 47.6 + i * 0.0001, lon: -122.33 - i * 0.0001 },
      heading: (i * 13) % 360,
      fuelLevel: Math.round((0.9 - (i % 50) / 100) * 100) / 100,
      engineTempC: 88 + (i % 9),
      odometerKm: 42_000 + i,
      gear: 1 + (i % 6),
    }),
  );
}
