import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startPostgres, type PostgresServer } from '../../bench/lib/postgres-server.js';
import { startRedis, type RedisServer } from '../../bench/lib/redis-server.js';
import { tempDir } from '../../bench/lib/temp-dir.js';

/**
 * The deployment of deploy/compose.yaml as local processes (docs/deploy.md, "On one machine"):
 * a throwaway PostgreSQL and Redis, N Nitrogen instances (`node dist/bin/nitrogen.js` with
 * deploy/nitrogen.json, each on free ports) and nginx from deploy/nginx.conf.template in front.
 * The files are the ones the containers use; only the environment differs.
 */

/** The source tree's deploy/ (this file runs from dist/deploy/local/). */
export const DEPLOY_DIR = fileURLToPath(new URL('../../../deploy/', import.meta.url));
const CLI = fileURLToPath(new URL('../../bin/nitrogen.js', import.meta.url));

export interface TopologyOptions {
  instances?: number;
  /** The instances' configuration file; deploy/nitrogen.json by default. */
  configFile?: string;
  /** More environment for every instance (e.g. variables a test's configuration refers to). */
  env?: Record<string, string>;
  /** Node.js flags of the instances, before the CLI. */
  nodeArgs?: string[];
  logLevel?: string;
  /** Show the instances' and nginx's output on this process's stderr. */
  echo?: boolean;
}

export interface Instance {
  readonly id: string;
  readonly rest: string;
  readonly mqtt: string;
  readonly child: ChildProcess;
  /** Everything the process wrote so far. */
  output(): string;
  /** Sends a signal and waits for the process to end. */
  kill(signal: NodeJS.Signals): Promise<void>;
  /** Starts the instance again, same id, ports and data directory. */
  start(): Promise<void>;
  readonly running: boolean;
}

export interface Topology {
  /** The front door: `mqtt://127.0.0.1:port` and `http://127.0.0.1:port`. */
  frontMqtt: string;
  frontRest: string;
  instances: Instance[];
  redis: RedisServer;
  postgres: PostgresServer;
  adminSecret: string;
  /** Everything nginx wrote. */
  nginxOutput(): string;
  /** nginx's master process (its workers are its children). */
  nginxPid: number;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * The template with every `${NAME}` replaced from `vars`, as envsubst does in the nginx image.
 * A name the template uses and `vars` lacks throws: nginx would otherwise read it as its own.
 */
export function renderTemplate(template: string, vars: Record<string, string>): string {
  return template.replace(/\$\{([A-Z_][A-Z0-9_]*)\}/g, (_, name: string) => {
    const value = vars[name];
    if (value === undefined) throw new Error(`the nginx template uses \${${name}}, which is not given`);
    return value;
  });
}

/** The environment variables a template or configuration file refers to as `${NAME}`. */
export function referencedVariables(text: string): string[] {
  return [...new Set([...text.matchAll(/\$\{([A-Z_][A-Z0-9_]*)\}/g)].map((m) => m[1]!))].sort();
}

/** An nginx upstream's server lines, with the passive check of the template's comment. */
export function upstreamServers(addresses: string[]): string {
  return addresses.map((address) => `server ${address} max_fails=1 fail_timeout=5s;`).join(' ');
}

export function findNginx(): string | null {
  if (process.env.NGINX) return existsSync(process.env.NGINX) ? process.env.NGINX : null;
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/usr/bin'])) {
    if (dir && existsSync(join(dir, 'nginx'))) return join(dir, 'nginx');
  }
  return null;
}

/**
 * The `load_module` directive nginx needs for `stream`, when it is built as a dynamic module (as
 * Debian builds it: package libnginx-mod-stream), or '' when it is built in (the official image).
 */
function streamModuleDirective(nginx: string): string {
  const built = spawnSync(nginx, ['-V'], { encoding: 'utf8' }).stderr ?? '';
  if (!built.includes('--with-stream=dynamic')) return '';
  const module = ['/usr/lib/nginx/modules', '/usr/share/nginx/modules', '/etc/nginx/modules'].map((d) => join(d, 'ngx_stream_module.so')).find((f) => existsSync(f));
  if (!module) throw new Error('nginx has its stream module apart and it is not installed: install the Debian package libnginx-mod-stream');
  return `load_module ${module};`;
}

/** Resolves once `url` answers 200, or throws after `ms` with what `why()` says. */
async function answers200(url: string, ms: number, why: () => string): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const status = await new Promise<number>((resolve) => {
      const req = get(url, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.setTimeout(1000, () => req.destroy());
      req.on('error', () => resolve(0));
    });
    if (status === 200) return;
    if (Date.now() > deadline) throw new Error(`${url} did not answer 200 within ${ms} ms:\n${why()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function exitOf(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

export async function startTopology(options: TopologyOptions = {}): Promise<Topology> {
  const count = options.instances ?? 3;
  const nginx = findNginx();
  if (!nginx) throw new Error('no nginx on PATH or NGINX; install the Debian package nginx');
  const dir = tempDir('nitrogen-cluster-');
  // nginx's workers run as an unprivileged user when it is started as root: they must reach the run dir.
  chmodSync(dir.path, 0o755);
  const stops: Array<() => Promise<void>> = [];
  /** Processes to kill if this one exits without `stop()` (mocha's --exit skips other files' hooks). */
  const children: ChildProcess[] = [];
  const killAll = () => {
    // SIGTERM: nginx's master then stops its workers (killed outright, it would leave them running).
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  };
  process.once('exit', killAll);
  const stop = async () => {
    for (const step of stops.splice(0).reverse()) await step().catch(() => undefined);
    process.removeListener('exit', killAll);
    dir.remove();
  };
  try {
    const postgres = await startPostgres();
    stops.push(() => postgres.stop());
    const redis = await startRedis();
    stops.push(() => redis.stop());
    const adminSecret = randomBytes(18).toString('base64url');
    const shared = {
      NITROGEN_DATABASE_URL: postgres.url(),
      NITROGEN_REDIS_URL: redis.url,
      NITROGEN_TOKEN_SECRET: randomBytes(32).toString('base64url'),
      NITROGEN_ADMIN_SECRET: adminSecret,
      NITROGEN_CONFIG: options.configFile ?? join(DEPLOY_DIR, 'nitrogen.json'),
      NITROGEN_LOG_LEVEL: options.logLevel ?? 'warn',
      ...options.env,
    };

    const instances: LocalInstance[] = [];
    for (let i = 1; i <= count; i++) {
      const id = `nitrogen-${i}`;
      const dataDir = join(dir.path, id);
      mkdirSync(dataDir, { mode: 0o700 });
      instances.push(new LocalInstance(id, await freePort(), await freePort(), { ...shared, NITROGEN_INSTANCE_ID: id, NITROGEN_DATA_DIR: dataDir }, options, children));
      stops.push(() => instances[i - 1]!.kill('SIGKILL'));
    }
    // The first creates the schema; the others then start side by side.
    await instances[0]!.start();
    await Promise.all(instances.slice(1).map((instance) => instance.start()));

    const runDir = join(dir.path, 'nginx');
    mkdirSync(runDir, { mode: 0o755 });
    const frontMqttPort = await freePort();
    const frontHttpPort = await freePort();
    const conf = renderTemplate(readFileSync(join(DEPLOY_DIR, 'nginx.conf.template'), 'utf8'), {
      FRONT_MQTT_PORT: `127.0.0.1:${frontMqttPort}`,
      FRONT_HTTP_PORT: `127.0.0.1:${frontHttpPort}`,
      NITROGEN_MQTT_SERVERS: upstreamServers(instances.map((x) => `127.0.0.1:${x.mqttPort}`)),
      NITROGEN_REST_SERVERS: upstreamServers(instances.map((x) => `127.0.0.1:${x.restPort}`)),
      NGINX_RUN_DIR: runDir,
    });
    writeFileSync(join(runDir, 'nginx.conf'), conf);
    let nginxOut = '';
    // -g comes before the file: the module is loaded before `stream` is read.
    const global = `${streamModuleDirective(nginx)} daemon off;`;
    const front = spawn(nginx, ['-p', runDir, '-c', join(runDir, 'nginx.conf'), '-e', 'stderr', '-g', global], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(front);
    for (const stream of [front.stdout, front.stderr]) {
      stream.on('data', (d: Buffer) => {
        nginxOut += d.toString();
        if (options.echo) process.stderr.write(`[nginx] ${d.toString()}`);
      });
    }
    stops.push(async () => {
      // SIGQUIT: nginx's graceful stop; it waits for open connections, so SIGTERM after a while.
      front.kill('SIGQUIT');
      const timer = setTimeout(() => front.kill('SIGTERM'), 3000);
      await exitOf(front);
      clearTimeout(timer);
    });
    const frontRest = `http://127.0.0.1:${frontHttpPort}`;
    await answers200(`${frontRest}/ready`, 20_000, () => nginxOut);

    return {
      frontMqtt: `mqtt://127.0.0.1:${frontMqttPort}`,
      frontRest,
      instances,
      redis,
      postgres,
      adminSecret,
      nginxOutput: () => nginxOut,
      nginxPid: front.pid!,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

class LocalInstance implements Instance {
  child!: ChildProcess;
  private out = '';

  constructor(
    readonly id: string,
    readonly mqttPort: number,
    readonly restPort: number,
    private readonly env: Record<string, string>,
    private readonly options: TopologyOptions,
    private readonly children: ChildProcess[],
  ) {}

  get rest(): string {
    return `http://127.0.0.1:${this.restPort}`;
  }

  get mqtt(): string {
    return `mqtt://127.0.0.1:${this.mqttPort}`;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  output(): string {
    return this.out;
  }

  async start(): Promise<void> {
    this.child = spawn(process.execPath, ['--max-semi-space-size=64', ...(this.options.nodeArgs ?? []), CLI], {
      env: { ...process.env, ...this.env, NITROGEN_MQTT_PORT: String(this.mqttPort), NITROGEN_REST_PORT: String(this.restPort) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.children.push(this.child);
    for (const stream of [this.child.stdout!, this.child.stderr!]) {
      stream.on('data', (d: Buffer) => {
        this.out += d.toString();
        if (this.out.length > 1_000_000) this.out = this.out.slice(-500_000);
        if (this.options.echo) process.stderr.write(d.toString().replace(/^(?=.)/gm, `[${this.id}] `));
      });
    }
    const child = this.child;
    const failed = exitOf(child).then(() => {
      throw new Error(`${this.id} exited (${child.exitCode ?? child.signalCode}):\n${this.out}`);
    });
    await Promise.race([answers200(`${this.rest}/ready`, 60_000, () => this.out), failed]);
    failed.catch(() => undefined);
  }

  async kill(signal: NodeJS.Signals): Promise<void> {
    if (!this.running) return;
    this.child.kill(signal);
    await exitOf(this.child);
  }
}
