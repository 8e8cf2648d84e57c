import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { connect, type ClientError } from '@nitrogen/client';

export interface CarCredentials {
  id: string;
  secret: string;
}

export interface FleetCredentials {
  cars: CarCredentials[];
  /** How many cars were registered by this run, and how many came from the file. */
  registered: number;
  reused: number;
}

/** A secret is shown once, at registration: losing the file means registering again. */
interface CredentialsFile {
  cars: Record<string, string>;
}

/** At most this many principals per registration request (the server's default `limits.maxBatch`). */
const REGISTRATION_BATCH = 1000;

function readCredentials(file: string): Record<string, string> {
  if (!existsSync(file)) return {};
  let parsed: CredentialsFile;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8')) as CredentialsFile;
  } catch (err) {
    throw new Error(`${file}: ${(err as Error).message}`, { cause: err });
  }
  if (typeof parsed?.cars !== 'object' || parsed.cars === null) throw new Error(`${file}: not a credentials file ({"cars": {"id": "secret", …}})`);
  return parsed.cars;
}

/** Written whole to a fresh file and renamed over the old one, so a crash never leaves half a file; owner-only. */
function writeCredentials(file: string, cars: Record<string, string>): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const temp = `${file}.${process.pid}.tmp`;
  writeFileSync(temp, JSON.stringify({ cars } satisfies CredentialsFile), { mode: 0o600 });
  renameSync(temp, file);
}

/**
 * Credentials for the cars `{prefix}-0` … `{prefix}-{count - 1}`: those in `file` are reused,
 * the rest are registered in bulk by an admin session of the client library (`register`, REST
 * `POST /principals` with an array) and added to the file after each request. `adminSecret` is
 * asked for only when some are missing, so a second run needs no admin secret at all.
 */
export async function fleetCredentials(rest: string, file: string, prefix: string, count: number, adminSecret: () => string): Promise<FleetCredentials> {
  const stored = readCredentials(file);
  const ids = Array.from({ length: count }, (_, i) => `${prefix}-${i}`);
  const missing = ids.filter((id) => stored[id] === undefined);
  if (missing.length > 0) {
    const admin = await connect({ url: rest, id: 'admin', secret: adminSecret(), transport: 'rest' }).catch((err: ClientError) => {
      throw new Error(`admin authentication failed: ${err.code}: ${err.message}`);
    });
    try {
      for (let start = 0; start < missing.length; start += REGISTRATION_BATCH) {
        const batch = missing.slice(start, start + REGISTRATION_BATCH).map((id) => ({ type: 'device' as const, id, tags: ['simulated-car'] }));
        const registered = await admin.register(batch).catch((err: ClientError) => {
          if (err.code === 'NITROGEN_ERR_CONFLICT') {
            throw new Error(`some of ${batch[0]!.id} … ${batch.at(-1)!.id} are registered already, but their secrets are not in ${file}: use another prefix, or a server with an empty data directory`);
          }
          throw new Error(`registration failed: ${err.code}: ${err.message}`);
        });
        for (const p of registered) stored[p.principal.id] = p.secret!;
        writeCredentials(file, stored);
      }
    } finally {
      await admin.close();
    }
  }
  return { cars: ids.map((id) => ({ id, secret: stored[id]! })), registered: missing.length, reused: count - missing.length };
}

/** The MQTT endpoint the server advertises at `GET /headwaiter`. */
export async function mqttEndpoint(rest: string): Promise<string> {
  let res: Response;
  try {
    res = await fetch(`${rest}/headwaiter`);
  } catch (err) {
    const cause = (err as Error & { cause?: { code?: string; message?: string } }).cause;
    throw new Error(`cannot reach ${rest}: ${cause?.code ?? cause?.message ?? (err as Error).message}`, { cause: err });
  }
  if (res.status !== 200) throw new Error(`GET ${rest}/headwaiter: ${res.status}`);
  const { endpoints } = (await res.json()) as { endpoints: { mqtt: string | null } };
  if (!endpoints.mqtt) throw new Error('the server has no MQTT endpoint (is the mqtt plugin configured?)');
  return endpoints.mqtt;
}
