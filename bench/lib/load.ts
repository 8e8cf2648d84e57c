import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { LoadConfig, LoadReport } from './load-worker.js';

export type LoadResult = Omit<LoadReport, 'latenciesMs'> & { rate: number; p50: number; p99: number; max: number };

/**
 * Drives a load-worker child process: connect, start, mark the start of the measured window,
 * report. `run` does it all with a warm-up; the steps are public so a bench can sample other
 * figures (CPU, memory) over exactly the same window.
 */
export class LoadGenerator {
  private constructor(private readonly child: ChildProcess) {}

  get pid(): number {
    return this.child.pid!;
  }

  private request<T>(message: object, expect: string): Promise<T> {
    return new Promise((resolve, reject) => {
      const onMessage = (msg: { op: string; message?: string } & T) => {
        if (msg.op === 'error') reject(new Error(msg.message));
        else if (msg.op === expect) resolve(msg);
        else return;
        this.child.off('message', onMessage);
      };
      this.child.on('message', onMessage);
      this.child.send(message);
    });
  }

  /** Forks the MQTT load worker and has it open its connections. */
  static connect(config: LoadConfig): Promise<LoadGenerator> {
    return LoadGenerator.spawn('./load-worker.js', config);
  }

  /** Forks any worker that speaks the same protocol (connect, start, mark, report, stop), relative to this file. */
  static async spawn(worker: string, config: object): Promise<LoadGenerator> {
    const child = fork(fileURLToPath(new URL(worker, import.meta.url)), [], { stdio: 'inherit', execArgv: ['--max-old-space-size=4096'] });
    const generator = new LoadGenerator(child);
    await generator.request({ op: 'connect', config }, 'connected');
    return generator;
  }

  start(): void {
    this.child.send({ op: 'start' });
  }

  mark(): void {
    this.child.send({ op: 'mark' });
  }

  async report(): Promise<LoadResult> {
    const { report } = await this.request<{ report: LoadReport & { p50: number; p99: number; max: number } }>({ op: 'report' }, 'report');
    return { ...report, rate: report.acked / report.seconds };
  }

  /** Sends for `warmup` seconds unmeasured, then measures `seconds`. */
  async run(warmup: number, seconds: number): Promise<LoadResult> {
    this.start();
    await sleep(warmup * 1000);
    this.mark();
    await sleep(seconds * 1000);
    return this.report();
  }

  /** Stops sending, waits up to `drainMs` for outstanding acknowledgements, closes; resolves with the run's totals. */
  async stop(drainMs = 0): Promise<{ ackedTotal: number; sentTotal: number }> {
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    const totals = await this.request<{ ackedTotal: number; sentTotal: number }>({ op: 'stop', drainMs }, 'stopped');
    await exited;
    return totals;
  }
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
