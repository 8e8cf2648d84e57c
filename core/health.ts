import { Gauge, type Registry as MetricsRegistry } from 'prom-client';
import { isNitrogenError } from './errors.js';

/**
 * How the server is doing, for load balancers and operators (docs/api.md, "GET /ready").
 *
 * Every component the server runs is watched under a name (`store`, `registry`, `identity`,
 * `sink:<name>`, `transport:<name>`): probed every `health.probeInterval`, and told at once
 * what the server itself sees (a failed commit marks the store down). A component is `ok`,
 * `degraded` or `down`, with a reason. The instance is ready to serve while it runs and no
 * critical component is down; a component that is not critical (a sink fed from the store:
 * ingestion goes on durably without it) makes it degraded, never unready. Answers come from
 * what the last probe found, so asking costs nothing, whoever asks and however often.
 */
export type HealthStatus = 'ok' | 'degraded' | 'down';

export interface ComponentHealth {
  status: HealthStatus;
  /** Why it is not ok, in words an operator can act on; never a secret. */
  reason?: string;
  /** Figures that explain the status, such as a sink's lag. */
  details?: Record<string, unknown>;
}

/** A component that can tell how it is doing; the server asks at every probe. */
export interface ReportsHealth {
  health(): ComponentHealth | Promise<ComponentHealth>;
}

export function reportsHealth(component: unknown): component is ReportsHealth {
  return typeof (component as Partial<ReportsHealth> | null)?.health === 'function';
}

export type ServerPhase = 'starting' | 'running' | 'stopping' | 'stopped';

export interface ComponentReport extends ComponentHealth {
  kind: string;
  /** Whether it being down makes the instance unready. */
  critical: boolean;
  /** When it entered this status. */
  since: string;
}

export interface HealthReport {
  /** `ok`, `degraded` or `down` while running; the phase otherwise. */
  status: HealthStatus | Exclude<ServerPhase, 'running'>;
  /** Whether a load balancer should send this instance traffic. */
  ready: boolean;
  /** When the components were last probed (null before the first probe). */
  checkedAt: string | null;
  components: Record<string, ComponentReport>;
}

interface Watched {
  kind: string;
  critical: boolean;
  probe?: () => ComponentHealth | Promise<ComponentHealth>;
  /** What each source last said (the probe, the commits…); the component is the worst of them. */
  sources: Map<string, ComponentHealth>;
  current: ComponentHealth;
  since: string;
  probing: boolean;
}

export const OK: ComponentHealth = { status: 'ok' };
const SEVERITY: Record<HealthStatus, number> = { ok: 0, degraded: 1, down: 2 };

/** A reason of bounded length: the answer of GET /ready stays small whatever an error says. */
export function brief(text: string): string {
  return text.length > 300 ? `${text.slice(0, 299)}…` : text;
}

/**
 * The status of a failure. A NitrogenError's message is written for operators (adapters keep
 * credentials out of it); anything else is named by its code only, its message being a driver's.
 */
export function failed(what: string, err: unknown): ComponentHealth {
  const why = isNitrogenError(err) ? `${err.code}: ${err.message}` : ((err as { code?: string })?.code ?? 'an unexpected error');
  return { status: 'down', reason: brief(`${what}: ${why}`) };
}

export class Health {
  private phase: ServerPhase = 'starting';
  private readonly watched = new Map<string, Watched>();
  private checkedAt: string | null = null;
  private timer?: NodeJS.Timeout;

  /** Watches a component; `probe` is asked every interval, and `observe` can report at any time. */
  watch(name: string, kind: string, options: { critical: boolean; probe?: Watched['probe'] }): void {
    this.watched.set(name, { kind, critical: options.critical, probe: options.probe, sources: new Map(), current: OK, since: new Date().toISOString(), probing: false });
  }

  /**
   * Records what `source` saw of a component; the component is as bad as its worst source.
   * Cheap when nothing changes, as on every group commit.
   */
  observe(name: string, health: ComponentHealth, source = 'probe'): void {
    const entry = this.watched.get(name);
    if (!entry || entry.sources.get(source) === health) return;
    entry.sources.set(source, health);
    let worst: ComponentHealth = health;
    for (const seen of entry.sources.values()) if (SEVERITY[seen.status] > SEVERITY[worst.status]) worst = seen;
    if (entry.current.status !== worst.status) entry.since = new Date().toISOString();
    entry.current = worst;
  }

  setPhase(phase: ServerPhase): void {
    this.phase = phase;
    if (phase === 'stopping' || phase === 'stopped') clearInterval(this.timer);
  }

  /** Probes now, then every `intervalMs`; a probe that has not answered in `timeoutMs` counts as down. */
  async monitor(intervalMs: number, timeoutMs: number): Promise<void> {
    await this.probe(timeoutMs);
    this.timer = setInterval(() => void this.probe(timeoutMs), intervalMs);
    this.timer.unref();
  }

  /** Asks every probe at once; one still running from the last round is not asked again. */
  async probe(timeoutMs: number): Promise<void> {
    // eslint-disable-next-line @typescript-eslint/await-thenable -- a component without a probe, or still probing, has nothing to wait for
    await Promise.all([...this.watched].map(([name, entry]) => (entry.probe && !entry.probing ? this.probeOne(name, entry, entry.probe, timeoutMs) : undefined)));
    this.checkedAt = new Date().toISOString();
  }

  private async probeOne(name: string, entry: Watched, probe: NonNullable<Watched['probe']>, timeoutMs: number): Promise<void> {
    entry.probing = true;
    let timer: NodeJS.Timeout | undefined;
    const answer = Promise.resolve()
      .then(probe)
      .catch((err: unknown) => failed('probe failed', err))
      .then((health) => {
        entry.probing = false;
        return health;
      });
    const late = new Promise<ComponentHealth>((resolve) => {
      timer = setTimeout(() => resolve({ status: 'down', reason: `no answer to the probe within ${timeoutMs} ms` }), timeoutMs);
    });
    this.observe(name, await Promise.race([answer, late]));
    clearTimeout(timer);
    // A late answer still counts when it comes.
    void answer.then((health) => this.observe(name, health));
  }

  report(): HealthReport {
    const components: Record<string, ComponentReport> = {};
    let worst: HealthStatus = 'ok';
    let criticalDown = false;
    for (const [name, { kind, critical, current, since }] of this.watched) {
      components[name] = { kind, critical, ...current, since };
      if (critical && current.status === 'down') criticalDown = true;
      const effect = critical ? current.status : current.status === 'ok' ? 'ok' : 'degraded';
      if (SEVERITY[effect] > SEVERITY[worst]) worst = effect;
    }
    const phase = this.phase;
    return { status: phase === 'running' ? worst : phase, ready: phase === 'running' && !criticalDown, checkedAt: this.checkedAt, components };
  }
}

/** `nitrogen_ready` and `nitrogen_component_status`, read from the last probe at each scrape. */
export function healthMetrics(registry: MetricsRegistry, health: Health): void {
  new Gauge({
    name: 'nitrogen_ready',
    help: 'Whether the instance is ready to serve (GET /ready answers 200): 1 or 0',
    registers: [registry],
    collect() {
      this.set(health.report().ready ? 1 : 0);
    },
  });
  new Gauge({
    name: 'nitrogen_component_status',
    help: 'Status of each component: 0 ok, 1 degraded, 2 down',
    labelNames: ['component', 'kind'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [component, report] of Object.entries(health.report().components)) this.set({ component, kind: report.kind }, SEVERITY[report.status]);
    },
  });
}
