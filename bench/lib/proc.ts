import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/**
 * CPU time and memory of processes, read from /proc (Linux). CPU time counts work done, not
 * time spent waiting for a core, so on a shared machine it says what a process needs even
 * when others slow it down.
 */
const TICKS_PER_SECOND = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** Fields after the `(comm)` of a /proc stat line; comm may hold spaces and parentheses. */
function statFields(path: string): string[] | null {
  try {
    const stat = readFileSync(path, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null; // the process or thread has ended
  }
}

/** CPU seconds (user + system) a process has used, all its threads together, and its main thread alone. */
export function cpuSeconds(pid: number): { total: number; main: number } {
  const all = statFields(`/proc/${pid}/stat`);
  const main = statFields(`/proc/${pid}/task/${pid}/stat`);
  // utime and stime are fields 14 and 15 of stat(5), 11 and 12 after the comm.
  const seconds = (f: string[] | null) => (f ? (Number(f[11]) + Number(f[12])) / TICKS_PER_SECOND : 0);
  return { total: seconds(all), main: seconds(main) };
}

/** Resident memory of a process in bytes (VmRSS), 0 once it has ended. */
export function rssBytes(pid: number): number {
  try {
    const kib = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return Number(kib ?? 0) * 1024;
  } catch {
    return 0;
  }
}

/** The whole machine's CPU seconds from /proc/stat: busy (user, nice, system, irq, softirq) and stolen by the hypervisor. */
function machineSeconds(): { busy: number; steal: number } {
  const [user, nice, system, , , irq, softirq, steal] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  return { busy: (user! + nice! + system! + irq! + softirq!) / TICKS_PER_SECOND, steal: steal! / TICKS_PER_SECOND };
}

export interface CpuShares {
  seconds: number;
  /** Cores used on average by each named process: all threads, and the main (event-loop) thread alone. */
  processes: Record<string, { cores: number; mainCores: number }>;
  /** Cores the rest of the machine used meanwhile (other people's work on a shared VM). */
  othersCores: number;
  stealCores: number;
}

/** Measures CPU use of named processes, and of everything else on the machine, between `start` and `stop`. */
export class CpuMeter {
  private before = new Map<string, { total: number; main: number }>();
  private machineBefore = machineSeconds();
  private startedAt = performance.now();

  constructor(private readonly pids: Record<string, number>) {}

  start(): void {
    this.before = new Map(Object.entries(this.pids).map(([name, pid]) => [name, cpuSeconds(pid)]));
    this.machineBefore = machineSeconds();
    this.startedAt = performance.now();
  }

  stop(): CpuShares {
    const seconds = (performance.now() - this.startedAt) / 1000;
    const processes: CpuShares['processes'] = {};
    let ours = 0;
    for (const [name, pid] of Object.entries(this.pids)) {
      const now = cpuSeconds(pid);
      const then = this.before.get(name)!;
      processes[name] = { cores: (now.total - then.total) / seconds, mainCores: (now.main - then.main) / seconds };
      ours += now.total - then.total;
    }
    const machine = machineSeconds();
    return {
      seconds,
      processes,
      othersCores: Math.max(0, machine.busy - this.machineBefore.busy - ours) / seconds,
      stealCores: (machine.steal - this.machineBefore.steal) / seconds,
    };
  }
}

/** The 1, 5 and 15-minute load averages, as /proc/loadavg shows them. */
export function loadAverage(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}
