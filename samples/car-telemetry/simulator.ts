import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { LinkFactory } from './car-link.js';
import { fleetCredentials, mqttEndpoint } from './credentials.js';
import { Fleet, type FleetRun, type FleetSettings, type IntervalReport } from './fleet.js';
import { LibraryLink } from './library-link.js';
import { RawLink } from './raw-link.js';

export type { IntervalReport } from './fleet.js';

export interface SimulatorOptions extends Partial<FleetSettings> {
  /** REST base URL of the server. */
  rest?: string;
  /** MQTT URL; by default the one the server advertises at `GET /headwaiter`. */
  mqtt?: string;
  /** Needed only to register cars; otherwise NITROGEN_ADMIN_SECRET, otherwise read from `adminSecretFile`. */
  adminSecret?: string;
  adminSecretFile?: string;
  cars?: number;
  /** Cars are `{prefix}-0` … `{prefix}-{cars - 1}`. */
  prefix?: string;
  /** Where the cars' secrets are kept between runs (mode 0600). */
  credentials?: string;
  /**
   * How cars connect: `'library'`, each a device of the client library (the default), or
   * `'raw'`, MQTT over raw sockets (raw-link.ts), the benchmarks' load generator, to compare their cost.
   */
  link?: 'library' | 'raw';
  /** Library cars: messages each holds while it cannot send, the oldest dropped beyond. */
  queueMessages?: number;
  /** Library cars: a directory for their queue files, so what they hold survives a restart. */
  queueDir?: string;
}

export interface SimulatorSummary extends FleetRun {
  cars: number;
  registered: number;
  reused: number;
}

/** The reference workload at its 60% peak: two messages a second per driving car. */
export const defaults = {
  rest: 'http://127.0.0.1:3000/api/v1',
  adminSecretFile: 'data/admin.secret',
  cars: 100,
  driving: 0.6,
  rate: 2,
  duration: 60,
  prefix: 'car',
  credentials: 'data/fleet-credentials.json',
  connectRate: 1000,
  sources: [] as string[],
  qos: 1 as 0 | 1,
  tripMinutes: 10,
  reportEvery: 5,
  link: 'library' as 'library' | 'raw',
  queueMessages: 120,
};

function check(ok: boolean, option: string, rule: string): void {
  if (!ok) throw new Error(`${option}: ${rule}`);
}

/** The options with their defaults filled in; throws naming the first bad one. */
export function resolveOptions(input: SimulatorOptions = {}) {
  const o = { ...defaults, ...input };
  check(Number.isInteger(o.cars) && o.cars > 0, 'cars', 'must be a positive whole number');
  check(o.driving >= 0 && o.driving <= 1, 'driving', 'must be a share between 0 and 1');
  check(o.rate > 0 && o.rate <= 100, 'rate', 'must be between 0 and 100 messages a second');
  check(o.duration >= 0, 'duration', 'must be 0 (until stopped) or more seconds');
  check(/^[A-Za-z0-9._-]{1,100}$/.test(o.prefix), 'prefix', 'must match [A-Za-z0-9._-]{1,100}, as principal ids do');
  check(o.connectRate > 0, 'connectRate', 'must be more than 0 connections a second');
  check(o.qos === 0 || o.qos === 1, 'qos', 'must be 0 or 1');
  check(o.tripMinutes > 0, 'tripMinutes', 'must be more than 0');
  check(o.reportEvery > 0, 'reportEvery', 'must be more than 0 seconds');
  check(o.link === 'library' || o.link === 'raw', 'link', "must be 'library' or 'raw'");
  check(Number.isInteger(o.queueMessages) && o.queueMessages > 0, 'queueMessages', 'must be a positive whole number');
  check(o.link === 'raw' || o.sources.length === 0, 'sources', "needs link 'raw': library cars connect from the address the system picks");
  check(o.link === 'raw' || o.qos === 1, 'qos', "0 needs link 'raw': library cars send at QoS 1, acknowledged");
  return o;
}

/**
 * Registers (or reuses) the fleet's cars, connects each over MQTT with its own credentials and
 * drives the configured share of them, reporting every `reportEvery` seconds to `onReport`.
 * Resolves with the summary once the duration is over (or `signal` aborted) and every car
 * has disconnected.
 */
export async function runFleet(input: SimulatorOptions = {}): Promise<SimulatorSummary> {
  const o = resolveOptions(input);
  const rest = o.rest.replace(/\/+$/, '');
  const adminSecret = () => {
    const secret = o.adminSecret ?? process.env.NITROGEN_ADMIN_SECRET ?? (existsSync(o.adminSecretFile) ? readFileSync(o.adminSecretFile, 'utf8').trim() : undefined);
    if (!secret) throw new Error(`registering cars needs the admin secret: set NITROGEN_ADMIN_SECRET, or point --admin-secret-file at the server's admin.secret (not found at ${o.adminSecretFile})`);
    return secret;
  };
  const credentials = await fleetCredentials(rest, o.credentials, o.prefix, o.cars, adminSecret);
  const endpoint = { rest, mqtt: o.mqtt ?? (await mqttEndpoint(rest)) };
  const link: LinkFactory = o.link === 'raw' ? (listener) => new RawLink(listener) : (listener) => new LibraryLink(listener, { queueMessages: o.queueMessages, queueDir: o.queueDir });
  const run = await new Fleet(credentials.cars, endpoint, o, link).run();
  return { ...run, cars: o.cars, registered: credentials.registered, reused: credentials.reused };
}

const USAGE = `Usage: npm run fleet -- [flags]     (or node dist/samples/car-telemetry/simulator.js [flags])

  --rest URL             server REST base URL (${defaults.rest})
  --mqtt URL             MQTT URL (default: the server's GET /headwaiter answer)
  --admin-secret-file F  admin secret, needed only to register cars (${defaults.adminSecretFile});
                         NITROGEN_ADMIN_SECRET takes precedence
  --cars N               fleet size (${defaults.cars})
  --driving SHARE        share of connected cars driving at any time, 0-1 (${defaults.driving})
  --rate N               messages a second per driving car (${defaults.rate})
  --duration S           seconds to run, 0 = until Ctrl-C (${defaults.duration})
  --trip-minutes M       mean trip length (${defaults.tripMinutes})
  --prefix P             car ids are P-0 … P-(N-1) (${defaults.prefix})
  --credentials F        cars' secrets, kept for the next run, mode 0600 (${defaults.credentials})
  --connect-rate N       new connections a second at most (${defaults.connectRate})
  --sources A,B,…        --link raw: local addresses to connect from, e.g. 127.0.0.1,127.0.0.2
                         (more than ~28,000 connections to one server need more than one)
  --qos 0|1              MQTT QoS of every PUBLISH (${defaults.qos}; 0 only with --link raw)
  --link library|raw     cars on the client library, or on the benchmarks' raw sockets (${defaults.link})
  --queue-messages N     library cars: messages each holds while offline, the oldest dropped beyond (${defaults.queueMessages})
  --queue-dir D          library cars: keep their queues in files in D, to survive a restart
  --report S             seconds between report lines (${defaults.reportEvery})`;

function fromArgs(argv: string[]): SimulatorOptions | null {
  const text = { type: 'string' } as const;
  const { values: v } = parseArgs({
    args: argv,
    options: {
      rest: text,
      mqtt: text,
      'admin-secret-file': text,
      cars: text,
      driving: text,
      rate: text,
      duration: text,
      'trip-minutes': text,
      prefix: text,
      credentials: text,
      'connect-rate': text,
      sources: text,
      qos: text,
      report: text,
      link: text,
      'queue-messages': text,
      'queue-dir': text,
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (v.help) return null;
  const num = (flag: keyof typeof v): number | undefined => {
    const value = v[flag];
    if (typeof value !== 'string') return undefined;
    const n = Number(value);
    if (!Number.isFinite(n)) throw new Error(`--${flag}: '${value}' is not a number`);
    return n;
  };
  const options: SimulatorOptions = {
    rest: v.rest,
    mqtt: v.mqtt,
    adminSecretFile: v['admin-secret-file'],
    prefix: v.prefix,
    credentials: v.credentials,
    cars: num('cars'),
    driving: num('driving'),
    rate: num('rate'),
    duration: num('duration'),
    tripMinutes: num('trip-minutes'),
    connectRate: num('connect-rate'),
    qos: num('qos') as 0 | 1 | undefined,
    reportEvery: num('report'),
    sources: v.sources?.split(',').filter(Boolean),
    link: v.link as 'library' | 'raw' | undefined,
    queueMessages: num('queue-messages'),
    queueDir: v['queue-dir'],
  };
  // Unset flags keep the defaults.
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined));
}

const int = (n: number) => Math.round(n).toLocaleString('en-US');
const ms = (n: number) => (n < 10 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : n.toFixed(0));

export function formatReport(r: IntervalReport, cars: number, qos: 0 | 1): string {
  const latency = r.latency ? `ack ms p50 ${ms(r.latency.p50)} p99 ${ms(r.latency.p99)} max ${ms(r.latency.max)}` : 'ack ms -';
  return `${r.elapsedS.toFixed(0).padStart(5)}s  connected ${int(r.connected).padStart(6)}/${int(cars)}  driving ${int(r.driving).padStart(6)}  ${qos === 1 ? 'acked' : 'sent'} ${int(r.ratePerS).padStart(7)}/s  ${latency}  errors ${r.errors}`;
}

export function formatSummary(s: SimulatorSummary): string {
  const perThousandCars = 1000 / s.cars;
  const l = s.latency;
  const errors = Object.entries(s.errors);
  return [
    'summary',
    `  run          ${s.seconds.toFixed(1)} s, ${int(s.cars)} cars (${int(s.registered)} registered, ${int(s.reused)} reused), ${int(s.connected)} connected at most`,
    `  messages     ${int(s.sent)} sent, ${int(s.acked)} acknowledged, ${int(s.unacked)} unacknowledged at the end; ${int(s.ratePerS)}/s over the run` +
      (s.steadyRatePerS === null ? '' : `, ${int(s.steadyRatePerS)}/s once all cars were connected`),
    l ? `  ack latency  p50 ${ms(l.p50)} ms, p90 ${ms(l.p90)} ms, p99 ${ms(l.p99)} ms, p99.9 ${ms(l.p999)} ms, max ${ms(l.max)} ms (PUBLISH to PUBACK, ${int(l.count)} acks)` : '  ack latency  - (no acknowledgements)',
    `  trips        ${int(s.trips.started)} started, ${int(s.trips.ended)} ended`,
    `  errors       ${errors.length === 0 ? 'none' : errors.map(([kind, n]) => `${int(n)} × ${kind}`).join('\n               ')}`,
    `  simulator    ${(s.cost.cpuCoreShare * 100).toFixed(1)}% of a core (${(s.cost.kernelShare * 100).toFixed(1)}% in the kernel), RSS ${s.cost.rssMiB.toFixed(0)} MiB (+${s.cost.rssGrowthMiB.toFixed(0)} MiB for the run), heap ${s.cost.heapMiB.toFixed(0)} MiB` +
      `; per 1,000 cars ${(s.cost.cpuCoreShare * 100 * perThousandCars).toFixed(1)}% of a core and ${(s.cost.rssGrowthMiB * perThousandCars).toFixed(1)} MiB`,
  ].join('\n');
}

async function main(): Promise<void> {
  const options = fromArgs(process.argv.slice(2));
  if (!options) {
    console.log(USAGE);
    return;
  }
  const o = resolveOptions(options);
  const stop = new AbortController();
  process.once('SIGINT', () => {
    console.log('stopping: waiting for acknowledgements, then disconnecting (Ctrl-C again to quit at once)');
    stop.abort();
    process.once('SIGINT', () => process.exit(130));
  });
  console.log(`car-telemetry: ${int(o.cars)} cars '${o.prefix}-…', ${Math.round(o.driving * 1000) / 10}% driving at ${o.rate} msg/s each, QoS ${o.qos}, ${o.duration > 0 ? `${o.duration} s` : 'until Ctrl-C'}`);
  const summary = await runFleet({ ...options, signal: stop.signal, onReport: (r) => console.log(formatReport(r, o.cars, o.qos)) });
  console.log(formatSummary(summary));
  if (summary.errors['CONNACK refused: bad username or password']) {
    console.log(`hint: the server refused stored credentials; if its data directory was reset, delete ${o.credentials} and run again`);
  }
  if (summary.connected === 0) process.exitCode = 1;
}

// Run directly: `npm run fleet -- --cars 1000`
if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err: Error) => {
    console.error(`car-telemetry: ${err.message}`);
    process.exit(1);
  });
}
