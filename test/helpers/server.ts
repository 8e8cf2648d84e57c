import { connectAsync, type IClientOptions, type MqttClient } from 'mqtt';
import { defaultCatalog } from '../../catalog.js';
import type { NitrogenConfigInput } from '../../core/config.js';
import type { PluginCatalog } from '../../core/plugin.js';
import { createServer, type NitrogenServer } from '../../core/server.js';
import { tempDir } from './temp.js';

export const ADMIN_SECRET = 'test-admin-secret-0123456789';

export interface ApiResponse<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

/** A real server on port 0 in a temporary data directory, with HTTP and MQTT helpers. */
export class TestServer {
  adminToken = '';

  constructor(
    readonly server: NitrogenServer,
    readonly dataDir: string,
    private readonly ownsDir?: () => void,
  ) {}

  get restUrl(): string {
    return this.server.endpoints.rest!;
  }

  get mqttUrl(): string {
    return this.server.endpoints.mqtt!;
  }

  /** The origin, for the routes outside the base path: /health and /metrics. */
  get origin(): string {
    return new URL(this.restUrl).origin;
  }

  async api<T = any>(method: string, path: string, options: { token?: string | null; body?: unknown; raw?: string; headers?: Record<string, string> } = {}): Promise<ApiResponse<T>> {
    const headers: Record<string, string> = { ...options.headers };
    const token = options.token === undefined ? this.adminToken : options.token;
    if (token) headers.authorization = `Bearer ${token}`;
    let body: string | undefined = options.raw;
    if (options.body !== undefined) body = JSON.stringify(options.body);
    if (body !== undefined && !headers['content-type']) headers['content-type'] = 'application/json';
    const url = path === '/health' || path === '/metrics' ? `${this.origin}${path}` : `${this.restUrl}${path}`;
    const res = await fetch(url, { method, headers, body });
    const text = await res.text();
    let parsed: unknown = text;
    if ((res.headers.get('content-type') ?? '').includes('json')) parsed = JSON.parse(text);
    return { status: res.status, body: parsed as T, headers: res.headers };
  }

  /** Registers principals as admin; returns id and secret of each. */
  async register(specs: Array<{ type: 'device' | 'app' | 'user'; id?: string; name?: string; tags?: string[] }>): Promise<Array<{ id: string; secret: string }>> {
    const res = await this.api('POST', '/principals', { body: specs });
    if (res.status !== 201) throw new Error(`registration failed: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body.principals.map((p: { principal: { id: string }; secret: string }) => ({ id: p.principal.id, secret: p.secret }));
  }

  async token(id: string, secret: string): Promise<string> {
    const res = await this.api('POST', '/principals/auth', { token: null, body: { id, secret } });
    if (res.status !== 200) throw new Error(`auth failed: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body.accessToken;
  }

  async grant(permission: { issuedTo: string | null; principalFor: string | null; action: string | null; authorized: boolean; priority?: number }): Promise<string> {
    const res = await this.api('POST', '/permissions', { body: permission });
    if (res.status !== 201) throw new Error(`grant failed: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body.permission.id;
  }

  mqtt(username: string, password: string, options: IClientOptions = {}): Promise<MqttClient> {
    return connectAsync(this.mqttUrl, { username, password, clientId: `${username}-${Math.random().toString(16).slice(2, 8)}`, reconnectPeriod: 0, connectTimeout: 5000, ...options });
  }

  async stop(): Promise<void> {
    await this.server.stop();
    this.ownsDir?.();
  }
}

/** Starts a server with the embedded default (or `config`) on port 0. Pass `dataDir` to reuse data. */
export async function startServer(config: NitrogenConfigInput = {}, dataDir?: string, catalog: PluginCatalog = defaultCatalog): Promise<TestServer> {
  const dir = dataDir ? undefined : tempDir();
  const server = createServer(
    {
      host: '127.0.0.1',
      adminSecret: ADMIN_SECRET,
      log: { level: (process.env.NITROGEN_TEST_LOG as 'info') ?? 'silent' },
      plugins: [
        { use: 'mqtt', options: { port: 0 } },
        { use: 'rest', options: { port: 0 } },
      ],
      ...config,
      dataDir: dataDir ?? dir!.path,
    },
    { catalog },
  );
  await server.start();
  const test = new TestServer(server, dataDir ?? dir!.path, dir?.remove);
  // An instance without the registry role (docs/cluster.md) issues no tokens.
  if (server.endpoints.rest && server.config.cluster.roles.includes('registry')) test.adminToken = await test.token('admin', ADMIN_SECRET);
  return test;
}

/** Resolves with the next message on `topic` (or any, when omitted), or rejects after `ms`. */
export function nextMessage(client: MqttClient, ms = 3000): Promise<{ topic: string; payload: any; retain: boolean }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off('message', onMessage);
      reject(new Error(`no MQTT message within ${ms} ms`));
    }, ms);
    function onMessage(topic: string, payload: Buffer, packet: { retain: boolean }): void {
      clearTimeout(timer);
      client.off('message', onMessage);
      resolve({ topic, payload: JSON.parse(payload.toString()), retain: packet.retain });
    }
    client.on('message', onMessage);
  });
}

/** Collects MQTT messages for `ms` and returns them. */
export async function collect(client: MqttClient, ms: number): Promise<Array<{ topic: string; payload: any }>> {
  const seen: Array<{ topic: string; payload: any }> = [];
  const onMessage = (topic: string, payload: Buffer) => seen.push({ topic, payload: JSON.parse(payload.toString()) });
  client.on('message', onMessage);
  await new Promise((r) => setTimeout(r, ms));
  client.off('message', onMessage);
  return seen;
}
