import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../../bin/nitrogen.js', import.meta.url));

/**
 * The Node.js flags `npm start` runs the server with (package.json): a larger young generation,
 * so messages waiting for their group commit die young instead of being copied and promoted
 * (docs/configuration.md, "Node.js flags"). Benchmarks give their peers the same.
 */
const SERVER_NODE_FLAGS = ['--max-semi-space-size=64'];

export interface ServerProcess {
  child: ChildProcess;
  rest: string;
  mqtt: string;
  output: () => string;
}

/** Runs the real CLI (`npm start`'s entry) in a child process and waits for its endpoints. */
export function spawnServer(env: Record<string, string>, cwd = process.cwd(), nodeArgs: string[] = []): Promise<ServerProcess> {
  const child = spawn(process.execPath, [...SERVER_NODE_FLAGS, ...nodeArgs, CLI], {
    cwd,
    env: { ...process.env, NITROGEN_MQTT_PORT: '0', NITROGEN_REST_PORT: '0', NITROGEN_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${out}`)), 15_000);
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
