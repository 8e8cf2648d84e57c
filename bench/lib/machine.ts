import { closeSync, fdatasyncSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { cpus, release, tmpdir, totalmem } from 'node:os';
import { join, relative } from 'node:path';
import { loadAverage } from './proc.js';

/** One line of machine facts, printed by every benchmark next to its figures. */
function machineFacts(): string {
  const cpu = cpus();
  return `${cpu.length} × ${cpu[0]?.model ?? 'unknown CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Linux ${release()}, Node ${process.version}`;
}

/** How the bench was started: the npm script if any, and the node command it ran. */
function commandLine(): string {
  const args = process.argv.slice(2).join(' ');
  const script = `node ${relative(process.cwd(), process.argv[1]!)} ${args}`.trim();
  const npm = process.env.npm_lifecycle_event;
  return npm ? `npm run ${npm} (${script})` : script;
}

export function printHeader(title: string): void {
  console.log(`# ${title}`);
  console.log(`date:    ${new Date().toISOString()}`);
  console.log(`machine: ${machineFacts()}`);
  console.log(`load:    load average ${loadAverage()} at the start (other work on this machine counts in it)`);
  console.log(`command: ${commandLine()}`);
}

/**
 * The file system holding `dir` and the median time of a 4 KiB write + fdatasync there: what
 * one durable group commit costs at the least on this disk.
 */
export function diskFacts(dir = tmpdir()): string {
  const mounts = readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .map((line) => line.split(' '))
    .filter((f) => f.length > 2);
  const mount = mounts.filter(([, point]) => dir === point || dir.startsWith(point === '/' ? '/' : point + '/')).sort((a, b) => b[1]!.length - a[1]!.length)[0];
  const file = join(dir, `fdatasync-probe-${process.pid}`);
  const fd = openSync(file, 'w');
  const times: number[] = [];
  try {
    const block = Buffer.alloc(4096, 1);
    for (let i = 0; i < 50; i++) {
      const started = performance.now();
      writeSync(fd, block);
      fdatasyncSync(fd);
      times.push(performance.now() - started);
    }
  } finally {
    closeSync(fd);
    rmSync(file, { force: true });
  }
  times.sort((a, b) => a - b);
  return `${dir} on ${mount?.[2] ?? '?'} (${mount?.[0] ?? '?'}), 4 KiB write + fdatasync p50 ${times[25]!.toFixed(2)} ms, max ${times[49]!.toFixed(2)} ms`;
}

/** Parses `--name value` flags against defaults, keeping their types. */
export function flags<T extends Record<string, number | string | boolean>>(defaults: T, argv = process.argv.slice(2)): T {
  const out: Record<string, number | string | boolean> = { ...defaults };
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i]!.replace(/^--/, '');
    if (!(key in defaults)) throw new Error(`unknown flag --${key} (known: ${Object.keys(defaults).join(', ')})`);
    const fallback = defaults[key]!;
    if (typeof fallback === 'boolean') out[key] = true;
    else out[key] = typeof fallback === 'number' ? Number(argv[++i]) : argv[++i]!;
  }
  return out as T;
}

/** A comma-separated list of numbers, as in `--connections 100,1000,10000`. */
export function numbers(list: string): number[] {
  const values = list.split(',').map(Number);
  if (values.some((n) => !Number.isFinite(n) || n < 0)) throw new Error(`not a list of numbers: '${list}'`);
  return values;
}

export const fmt = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '-');
export const ms = (n: number): string => (Number.isFinite(n) ? (n < 10 ? n.toFixed(2) : n.toFixed(1)) : '-');
export const MiB = 2 ** 20;
