import { cpus, totalmem, release } from 'node:os';

/** One line of machine facts, printed by every benchmark next to its figures. */
export function machineFacts(): string {
  const cpu = cpus();
  return `${cpu.length} × ${cpu[0]?.model ?? 'unknown CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Linux ${release()}, Node ${process.version}`;
}

export function printHeader(title: string): void {
  console.log(`# ${title}`);
  console.log(`date:    ${new Date().toISOString()}`);
  console.log(`machine: ${machineFacts()}`);
  console.log(`command: ${['npm run', process.env.npm_lifecycle_event ?? 'node ' + process.argv.slice(1).join(' ')].join(' ')} ${process.argv.slice(2).join(' ')}`.trim());
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
