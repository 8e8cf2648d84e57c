import { request } from 'node:http';
import { createConnection } from 'node:net';
import { MqttClient, type IClientOptions } from 'mqtt';

/*
 * Clients on other loopback addresses (127.0.0.2, 127.0.0.3, …): Linux routes all of 127/8 to
 * the loopback interface, so a test can be a second client address that the server's
 * per-address limits tell apart from the normal device on 127.0.0.1.
 */

export interface PlainResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: any;
}

/** One HTTP request from `localAddress`. */
export function httpFrom(localAddress: string, url: string, method: string, options: { body?: unknown; headers?: Record<string, string> } = {}): Promise<PlainResponse> {
  return new Promise((resolve, reject) => {
    const body = options.body === undefined ? undefined : JSON.stringify(options.body);
    const headers: Record<string, string> = { ...options.headers };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const req = request(url, { method, localAddress, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => {
        const json = (res.headers['content-type'] ?? '').includes('json');
        resolve({ status: res.statusCode!, headers: res.headers, body: json && text ? JSON.parse(text) : text });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** An MQTT client connecting from `localAddress`; resolves once connected, rejects with the CONNACK refusal (`err.code`). */
function mqttFrom(localAddress: string, mqttUrl: string, username: string, password: string, options: IClientOptions = {}): Promise<MqttClient> {
  const { hostname, port } = new URL(mqttUrl);
  const client = new MqttClient(() => createConnection({ host: hostname, port: Number(port), localAddress }), {
    username,
    password,
    clientId: `${username}-${Math.random().toString(16).slice(2, 8)}`,
    reconnectPeriod: 0,
    connectTimeout: 5000,
    protocolVersion: 4,
    ...options,
  });
  return new Promise((resolve, reject) => {
    client.once('connect', () => {
      client.off('error', onError);
      resolve(client);
    });
    const onError = (err: Error) => {
      client.end(true);
      reject(err);
    };
    client.once('error', onError);
  });
}

/** The CONNACK return code a CONNECT from `localAddress` gets: 0 accepted, 3 server unavailable, 4 bad credentials, 5 not authorized. */
export async function connackFrom(localAddress: string, mqttUrl: string, username: string, password: string): Promise<number> {
  try {
    const client = await mqttFrom(localAddress, mqttUrl, username, password);
    await client.endAsync();
    return 0;
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (typeof code !== 'number') throw err;
    return code;
  }
}
