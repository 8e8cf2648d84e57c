// Issue: an unauthenticated scrypt flood slowed everything. 32 concurrent wrong password logins
// for `admin` made PUBACKs take 3-5 s: scrypt ran on libuv's thread pool, where the store's
// O_DSYNC journal writes wait their turn. Password hashing now runs on its own threads, at
// most `credentials.hashing.concurrency` at once, with a bounded queue in front.
import assert from 'node:assert/strict';
import type { MqttClient } from 'mqtt';
import { Tokens } from '../../core/tokens.js';
import { assertServesNormalDevice } from '../helpers/abuse.js';
import { httpFrom } from '../helpers/from-address.js';
import { startServer, type TestServer } from '../helpers/server.js';

// The rate limits would stop a flood on one principal after a few tries: lifted here, so every
// attempt reaches the hasher and the test measures what the hashing bound alone guarantees.
const unlimited = { perPrincipal: { failures: 1_000_000, per: '1s' }, perAddress: { failures: 1_000_000, per: '1s' } };

function login(t: TestServer, id: string, secret: string) {
  return httpFrom('127.0.0.2', `${t.restUrl}/principals/auth`, 'POST', { body: { id, secret } });
}

/** Milliseconds each of `count` QoS 1 publishes took to be acknowledged, one after another. */
async function pubackTimes(client: MqttClient, id: string, count: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    await client.publishAsync(`devices/${id}/messages/telemetry`, JSON.stringify({ i }), { qos: 1 });
    times.push(performance.now() - started);
  }
  return times;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** Polls a condition on server state (not a clock) until it holds. */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 5));
}

describe("abuse: password hashing is bounded and off the store's path", function () {
  // Each test hashes a few dozen scrypt digests one at a time (concurrency 1, by design): on a
  // machine busy with other work that alone can pass the suite's 20 s default.
  this.timeout(90_000);
  let t: TestServer;
  afterEach(() => t?.stop());

  it("does not delay a device's PUBACKs while 32 wrong admin logins are being hashed", async () => {
    t = await startServer({ credentials: { ...unlimited, hashing: { concurrency: 1, maxQueue: 32 } } });
    const hasher = t.server.container.resolve(Tokens.PasswordHasher);
    const [device] = await t.register([{ type: 'device', id: 'puback-car' }]);
    const client = await t.mqtt(device!.id, device!.secret);
    try {
      const quiet = await pubackTimes(client, device!.id, 40);

      // 32 attackers, each sending its next wrong login as soon as the last one was answered.
      let flooding = true;
      const answers: number[] = [];
      const attackers = Array.from({ length: 32 }, async () => {
        while (flooding) answers.push((await login(t, 'admin', 'not-the-admin-secret')).status);
      });
      await until(() => hasher.stats().running === 1 && hasher.stats().queued >= 16);
      const flooded = await pubackTimes(client, device!.id, 40);
      const queuedAtEnd = hasher.stats().queued;
      flooding = false;
      await Promise.all(attackers);

      assert.ok(queuedAtEnd >= 16, `the flood was still being hashed while measured (${queuedAtEnd} queued)`);
      assert.ok(answers.length > 0 && answers.every((status) => status === 401), `answers: ${[...new Set(answers)]}`);
      assert.equal(hasher.stats().mostRunning, 1, 'never more hashes at once than credentials.hashing.concurrency');
      // Generous: before, the median was seconds. Queued scrypt no longer stands between a
      // device and the journal's writes.
      const bound = Math.max(250, 5 * median(quiet));
      assert.ok(median(flooded) <= bound, `median PUBACK ${median(flooded).toFixed(1)} ms during the flood, ${median(quiet).toFixed(1)} ms without (bound ${bound.toFixed(1)} ms)`);
    } finally {
      await client.endAsync();
    }
    await assertServesNormalDevice(t);
  });

  it('refuses password checks beyond the queue at once with 503 and Retry-After', async () => {
    t = await startServer({ credentials: { ...unlimited, hashing: { concurrency: 1, maxQueue: 4 } } });
    const hasher = t.server.container.resolve(Tokens.PasswordHasher);
    // 32 attackers, each trying again as soon as it is answered, until the queue has refused one.
    const answers: Awaited<ReturnType<typeof login>>[] = [];
    const refusedOne = () => answers.some((res) => res.status === 503);
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (!refusedOne()) answers.push(await login(t, 'admin', 'not-the-admin-secret'));
      }),
    );

    const overloaded = answers.filter((res) => res.status === 503);
    assert.ok(overloaded.length > 0, 'some checks found the queue full');
    for (const res of overloaded) {
      assert.equal(res.body.error.code, 'NITROGEN_ERR_OVERLOADED');
      assert.match(res.body.error.message, /credentials\.hashing\.maxQueue/);
      assert.ok(Number(res.headers['retry-after']) >= 1);
    }
    assert.ok(answers.every((res) => res.status === 401 || res.status === 503));
    assert.equal(hasher.stats().mostQueued, 4, 'the queue filled, and never held more than maxQueue');
    assert.equal(hasher.stats().mostRunning, 1);
    // A refused check was not counted as a failed guess: the admin still logs in.
    assert.equal((await login(t, 'admin', 'test-admin-secret-0123456789')).status, 200);
    await assertServesNormalDevice(t);
  });
});
