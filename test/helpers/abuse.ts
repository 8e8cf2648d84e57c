import assert from 'node:assert/strict';
import type { TestServer } from './server.js';

let serial = 0;

/**
 * What every abuse test checks after its attack: a well-behaved device still registers, connects
 * over MQTT, gets its QoS 1 PUBACK, and reads its message back over REST. A server that stalls
 * instead shows as the test's timeout, not as a timed assertion.
 */
export async function assertServesNormalDevice(t: TestServer): Promise<void> {
  const id = `normal-device-${process.pid}-${++serial}`;
  const [device] = await t.register([{ type: 'device', id }]);
  const client = await t.mqtt(device!.id, device!.secret);
  try {
    const marker = `alive-${serial}`;
    await client.publishAsync(`devices/${id}/messages/telemetry`, JSON.stringify({ marker }), { qos: 1 });
    const token = await t.token(device!.id, device!.secret);
    const res = await t.api('GET', `/messages?from=${id}&limit=10`, { token });
    assert.equal(res.status, 200, `a normal device's query answered ${res.status}`);
    assert.ok(
      res.body.messages.some((m: { body: { marker?: string } }) => m.body?.marker === marker),
      'a normal device reads back what it published',
    );
  } finally {
    await client.endAsync();
  }
}
