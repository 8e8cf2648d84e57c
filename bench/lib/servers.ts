import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { SERVER_NODE_FLAGS, exited, spawnServer, type ServerProcess } from '../../test/helpers/process.js';

export { spawnServer, exited, type ServerProcess };

/** Starts bare aedes in its own process and resolves with its port. */
export function spawnBareAedes(): Promise<{ child: ChildProcess; port: number }> {
  return spawnPeer('./bare-aedes.js');
}

/** Starts the bare koa endpoint in its own process and resolves with its port. */
export function spawnBareKoa(): Promise<{ child: ChildProcess; port: number }> {
  return spawnPeer('./bare-koa.js');
}

/** Runs a peer script (relative to this file) that prints `PORT <n>` once it listens, with the server's Node.js flags. */
function spawnPeer(script: string): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [...SERVER_NODE_FLAGS, fileURLToPath(new URL(script, import.meta.url))], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
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
