import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { tempDir } from './temp.js';

/** Azurite's well-known development account (public, documented; not a secret). */
export const AZURITE_ACCOUNT = 'devstoreaccount1';
export const AZURITE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export interface Azurite {
  endpoint: string;
  connectionString: string;
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

const require = createRequire(import.meta.url);
const MAIN = join(dirname(require.resolve('azurite/package.json')), 'dist/src/table/main.js');

function launch(port: number, location: string): Promise<ChildProcess> {
  const args = ['--inMemoryPersistence', '--tableHost', '127.0.0.1', '--tablePort', String(port), '--skipApiVersionCheck', '--loose', '--disableTelemetry', '--silent'];
  // In the working directory Azurite keeps nothing but may write its logs: a temporary one.
  const child = spawn(process.execPath, [MAIN, ...args], { cwd: location, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error(`Azurite did not start within 20 s:\n${output}`)), 20_000);
    function fail(err: Error): void {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(err);
    }
    child.once('exit', (code) => fail(new Error(`Azurite exited with ${code}:\n${output}`)));
    const onData = (data: Buffer) => {
      output += data.toString();
      if (output.includes('successfully started')) {
        clearTimeout(timer);
        child.removeAllListeners('exit');
        resolve(child);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
  });
}

/**
 * Starts Azurite's Table service in memory as a child process, on a free port of 127.0.0.1
 * (Azurite cannot report a port 0 it was given, so one is picked and retried if taken).
 */
export async function startAzurite(): Promise<Azurite> {
  const dir = tempDir('nitrogen-azurite-');
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    let child: ChildProcess;
    try {
      child = await launch(port, dir.path);
    } catch (err) {
      lastError = err;
      continue;
    }
    const endpoint = `http://127.0.0.1:${port}/${AZURITE_ACCOUNT}`;
    return {
      endpoint,
      connectionString: `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};TableEndpoint=${endpoint};`,
      stop: async () => {
        if (child.exitCode === null && child.signalCode === null) {
          const exited = new Promise((resolve) => child.once('exit', resolve));
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
          await exited;
          clearTimeout(timer);
        }
        dir.remove();
      },
    };
  }
  dir.remove();
  throw lastError;
}
