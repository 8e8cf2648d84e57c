import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { exited } from './servers.js';
import { tempDir } from './temp-dir.js';

/** Azurite's well-known development account (public and documented, not a secret). */
const ACCOUNT = 'devstoreaccount1';
const KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';
const MAIN = join(dirname(createRequire(import.meta.url).resolve('azurite/package.json')), 'dist/src/table/main.js');

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * Azurite's Table service in memory, in a child process, for the Azure Tables store benchmark.
 * Azurite cannot report a port 0 it was given, so a free one is picked first.
 */
export async function startAzurite(): Promise<{ connectionString: string; stop(): Promise<void> }> {
  const dir = tempDir('nitrogen-bench-azurite-');
  const port = await freePort();
  const args = ['--inMemoryPersistence', '--tableHost', '127.0.0.1', '--tablePort', String(port), '--skipApiVersionCheck', '--loose', '--disableTelemetry', '--silent'];
  const child: ChildProcess = spawn(process.execPath, [MAIN, ...args], { cwd: dir.path, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const onData = (data: Buffer) => {
      output += data.toString();
      if (output.includes('successfully started')) resolve();
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`Azurite exited with ${code}:\n${output}`)));
  });
  const endpoint = `http://127.0.0.1:${port}/${ACCOUNT}`;
  return {
    connectionString: `DefaultEndpointsProtocol=http;AccountName=${ACCOUNT};AccountKey=${KEY};TableEndpoint=${endpoint};`,
    stop: async () => {
      child.kill('SIGTERM');
      await exited(child);
      dir.remove();
    },
  };
}
