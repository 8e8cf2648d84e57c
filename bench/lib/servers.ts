import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../../bin/nitrogen.js', import.meta.url));

/**
 * The Node.js flags `npm start` runs the server with (package.json `scripts.start`;
 * docs/configuration.md, "Node.js flags"). The peers measured beside it get the same.
 */
const SERVER_NODE_FLAGS = ['--max-semi-space-size=64'];

export interface ServerProcess {
  child: ChildProcess;
  rest: string;
  mqtt: string;
  output: () => string;
}

/** Runs the server as `npm start` does (or another build's CLI), in a child process, and resolves with its endpoints once it prints them. */
export function spawnServer(env: Record<string, string>, cwd = process.cwd(), nodeArgs: string[] = [], cli = CLI): Promise<ServerProcess> {
  const child = spawn(process.execPath, [...SERVER_NODE_FLAGS, ...nodeArgs, cli], {
    cwd,
    env: { ...process.env, NITROGEN_MQTT_PORT: '0', NITROGEN_REST_PORT: '0', NITROGEN_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`server did not start within 60 s:\n${out}`));
    }, 60_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}:\n${out}`));
    });
    child.stdout.on('data', () => {
      const rest = /REST: (\S+)/.exec(out)?.[1];
      const mqtt = /MQTT: (\S+)/.exec(out)?.[1];
      if (rest && mqtt) {
        clearTimeout(timer);
        child.removeAllListeners('exit');
        resolve({ child, rest, mqtt, output: () => out });
      }
    });
  });
}

export function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

/** Starts bare aedes in its own process and resolves with its port. */
export function spawnBareAedes(env: Record<string, string> = {}): Promise<{ child: ChildProcess; port: number }> {
  return spawnPeer('./bare-aedes.js', env);
}

/** Starts the bare koa endpoint in its own process and resolves with its port. */
export function spawnBareKoa(): Promise<{ child: ChildProcess; port: number }> {
  return spawnPeer('./bare-koa.js');
}

/** Runs a peer script (relative to this file) that prints `PORT <n>` once it listens, with the server's Node.js flags. */
function spawnPeer(script: string, env: Record<string, string> = {}): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [...SERVER_NODE_FLAGS, fileURLToPath(new URL(script, import.meta.url))], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const port = /PORT (\d+)/.exec(out)?.[1];
      if (port) resolve({ child, port: Number(port) });
    });
    child.once('exit', (code) => reject(new Error(`${script} exited with ${code}`)));
  });
}

export async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  await exited(child);
}

export async function adminToken(rest: string, secret: string): Promise<string> {
  const res = await fetch(`${rest}/principals/auth`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: 'admin', secret }) });
  return ((await res.json()) as { accessToken: string }).accessToken;
}

/** Registers `count` devices in bulk (1,000 per request) and returns their credentials. */
export async function registerDevices(rest: string, token: string, count: number, prefix = 'car'): Promise<Array<{ id: string; secret: string }>> {
  const devices: Array<{ id: string; secret: string }> = [];
  for (let start = 0; start < count; start += 1000) {
    const specs = Array.from({ length: Math.min(1000, count - start) }, (_, i) => ({ type: 'device', id: `${prefix}-${start + i}` }));
    const res = await fetch(`${rest}/principals`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify(specs) });
    if (res.status !== 201) throw new Error(`registration failed: ${res.status} ${await res.text()}`);
    const body = (await res.json()) as { principals: Array<{ principal: { id: string }; secret: string }> };
    devices.push(...body.principals.map((p) => ({ id: p.principal.id, secret: p.secret })));
  }
  return devices;
}
