// What the AMQP sink tests share: waiting for a condition, devices publishing over MQTT to a
// real server, and the stored envelopes to compare deliveries with.
import type { Message } from '../../core/message.js';
import type { TestServer } from '../helpers/server.js';

export async function until(check: () => boolean | Promise<boolean>, ms = 8000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`${what} not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export const fastDelivery = { batchSize: 50, lingerMs: 5, retryMinMs: 20, retryMaxMs: 200, pollMs: 50 };

/** Registers `devices` and has each publish `count` QoS 1 telemetry messages over MQTT; resolves once all are acknowledged. */
export async function publishFromDevices(t: TestServer, devices: string[], count: number, body = (device: string, i: number): unknown => ({ device, seq: i, speedKmh: 50 + i })): Promise<void> {
  const creds = await t.register(devices.map((id) => ({ type: 'device' as const, id })));
  await Promise.all(
    creds.map(async ({ id, secret }) => {
      const client = await t.mqtt(id, secret);
      try {
        for (let i = 0; i < count; i++) await client.publishAsync(`devices/${id}/messages/telemetry`, JSON.stringify(body(id, i)), { qos: 1 });
      } finally {
        await client.endAsync();
      }
    }),
  );
}

/** Every stored message, oldest first, as the REST API returns it. */
export async function storedMessages(t: TestServer): Promise<Message[]> {
  const all: Message[] = [];
  let cursor: string | null = null;
  do {
    const res: { body: { messages: Message[]; next: string | null } } = await t.api('GET', `/messages?order=asc&limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    all.push(...res.body.messages);
    cursor = res.body.next;
  } while (cursor);
  return all;
}

/** A sink's status from GET /sinks/:name. */
export async function sinkStatus(t: TestServer, name: string): Promise<{ delivered: number; deadLettered: number; retrying: boolean; lastError: string | null }> {
  return (await t.api('GET', `/sinks/${name}`)).body.sink;
}
