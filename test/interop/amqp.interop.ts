// Interop: the client's scenarios against real brokers — RabbitMQ 3.x with
// the rabbitmq_amqp1_0 plugin, and the Qpid Proton example broker. Start them
// with `.ci/interop-brokers.sh` and source the file it writes; the URLs come
// from RABBITMQ_AMQP_URL and QPID_AMQP_URL. Under CI=true a missing URL fails.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Client, LinkError, Policy, SaslError, SessionError, type ClientPolicy, type Connection, type PolicyOverrides } from '@nitrogen/amqp';
import { brokerUrl } from './broker-url.js';
import { CuttableProxy } from './proxy.js';

interface Broker {
  name: string;
  env: string;
  policy: ClientPolicy;
  /** RabbitMQ 3.x: /queue/NAME declares the queue on attach; the Proton broker creates any address. */
  address: (name: string) => string;
  /** A source the broker refuses to attach, if it has one. */
  missing?: string;
  authenticates: boolean;
  /** Whether a released message goes back on its queue (the Proton example broker drops it). */
  requeuesReleased: boolean;
}

const brokers: Broker[] = [
  { name: 'RabbitMQ (rabbitmq_amqp1_0)', env: 'RABBITMQ_AMQP_URL', policy: Policy.RabbitMQ, address: (n) => `/queue/${n}`, missing: '/amq/queue/nitrogen-no-such-queue', authenticates: true, requeuesReleased: true },
  { name: 'Qpid Proton broker', env: 'QPID_AMQP_URL', policy: Policy.Qpid, address: (n) => n, authenticates: false, requeuesReleased: false },
];

let counter = 0;
const unique = (): string => `nitrogen-${process.pid}-${Date.now()}-${++counter}`;
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

for (const broker of brokers) {
  describe(`AMQP interop: ${broker.name}`, function () {
    this.timeout(60000);
    let url: string;
    const open: Connection[] = [];
    const connect = async (overrides?: PolicyOverrides, target = url): Promise<Connection> => {
      const c = await Client.connect(target, broker.policy, overrides);
      open.push(c);
      return c;
    };

    before(function () {
      url = brokerUrl(this, broker.env);
    });
    afterEach(async () => {
      await Promise.all(open.splice(0).map((c) => c.close()));
    });

    it('sends and receives a message with its sections', async () => {
      const conn = await connect();
      const address = broker.address(unique());
      const receiver = await conn.createReceiver(address, { credit: 10 });
      const sender = await conn.createSender(address);
      assert.deepEqual(
        await sender.send({
          properties: { messageId: 'id-1', contentType: 'application/json', correlationId: 'c-1' },
          messageAnnotations: { 'x-opt-partition-key': 'p1' },
          applicationProperties: { device: 'd-1', seq: 1, temp: 21.5 },
          body: Buffer.from('{"t":21.5}'),
        }),
        { type: 'accepted' },
      );
      const d = (await receiver.receive())!;
      const m = d.message;
      assert.equal((m.body as Buffer).toString(), '{"t":21.5}');
      assert.equal(m.properties?.messageId, 'id-1');
      assert.equal(m.properties?.contentType, 'application/json');
      assert.equal(m.applicationProperties?.device, 'd-1');
      assert.equal(m.applicationProperties?.temp, 21.5);
      d.accept();
    });

    it('delivers 60 messages in order through a receiver with credit 7 (exhaustion and refill)', async () => {
      const conn = await connect();
      const address = broker.address(unique());
      const sender = await conn.createSender(address);
      await Promise.all(Array.from({ length: 60 }, (_, i) => sender.send({ body: i })));
      const receiver = await conn.createReceiver(address, { credit: 7 });
      const seen: number[] = [];
      for await (const d of receiver) {
        assert.ok(receiver.credit <= 7);
        seen.push(d.message.body as number);
        d.accept();
        if (seen.length === 60) break;
      }
      assert.deepEqual(
        seen,
        Array.from({ length: 60 }, (_, i) => i),
      );
    });

    it('sends and receives a 10 MiB message in 64 KiB frames', async () => {
      const conn = await connect({ maxFrameSize: 65536 });
      const address = broker.address(unique());
      const big = randomBytes(10 * 1024 * 1024);
      const sender = await conn.createSender(address);
      await sender.send({ body: big });
      const receiver = await conn.createReceiver(address, { credit: 1 });
      const d = (await receiver.receive())!;
      assert.equal(sha(d.message.body as Buffer), sha(big));
      d.accept();
    });

    it('sends pre-settled and receives them all', async () => {
      const conn = await connect({ sender: { settleMode: 'settled' } });
      const address = broker.address(unique());
      const receiver = await conn.createReceiver(address, { credit: 50 });
      const sender = await conn.createSender(address);
      await Promise.all(Array.from({ length: 20 }, (_, i) => sender.send({ body: `m${i}` })));
      const got: string[] = [];
      while (got.length < 20) {
        const d = (await receiver.receive())!;
        got.push(d.message.body as string);
        d.accept();
      }
      assert.equal(new Set(got).size, 20);
    });

    it('a released delivery is delivered again; an accepted one is not', async function () {
      if (!broker.requeuesReleased) this.skip(); // the Proton example broker forgets a message once sent
      const conn = await connect();
      const address = broker.address(unique());
      const sender = await conn.createSender(address);
      await sender.send({ body: 'again' });
      await sender.send({ body: 'next' });
      const receiver = await conn.createReceiver(address, { credit: 1 });
      const first = (await receiver.receive())!;
      assert.equal(first.message.body, 'again');
      first.release();
      // The broker puts it back; 'next' may come before or after it.
      const rest: string[] = [];
      while (rest.length < 2) {
        const d = (await receiver.receive())!;
        rest.push(d.message.body as string);
        d.accept();
      }
      assert.deepEqual(rest.sort(), ['again', 'next']);
    });

    it('refuses a link with an AMQP error condition', async function () {
      if (!broker.missing) this.skip(); // the Proton example broker creates any address it is asked for
      const conn = await connect();
      // RabbitMQ 3.x refuses by ending the whole session (not just detaching the link).
      await assert.rejects(conn.createReceiver(broker.missing), (e: unknown) => {
        assert.ok(e instanceof LinkError || e instanceof SessionError, String(e));
        assert.equal(e.condition, 'amqp:not-found');
        return true;
      });
      // The connection survives, with a new default session.
      const sender = await conn.createSender(broker.address(unique()));
      await sender.send({ body: 'ok' });
    });

    it('refuses SASL PLAIN with wrong credentials', async function () {
      if (!broker.authenticates) this.skip(); // the Proton example broker accepts anyone (ANONYMOUS)
      const bad = url.replace(/\/\/[^@]*@/, '//guest:wrong-password@');
      await assert.rejects(Client.connect(bad, broker.policy), (e: unknown) => e instanceof SaslError && e.saslCode === 1);
    });

    it('stays open over several idle-time-outs, kept alive by heartbeats both ways', async () => {
      const conn = await connect({ idleTimeout: 1000 });
      let dropped = false;
      conn.on('disconnected', () => {
        dropped = true;
      });
      await sleep(3000);
      assert.equal(dropped, false);
      const sender = await conn.createSender(broker.address(unique()));
      await sender.send({ body: 'alive' });
    });

    it('reconnects after the connection is cut and loses no message', async () => {
      const { hostname, port } = new URL(url);
      const proxy = await CuttableProxy.start({ host: hostname, port: Number(port) });
      try {
        const proxied = url.replace(`:${port}`, `:${proxy.port}`);
        const conn = await connect({ reconnect: { initialDelay: 20, maxDelay: 200 } }, proxied);
        const address = broker.address(unique());
        const sender = await conn.createSender(address);
        const n = 300;
        const sends = Array.from({ length: n }, (_, i) => sender.send({ body: i }));
        await sleep(5);
        proxy.cut();
        await Promise.all(sends);
        const receiver = await conn.createReceiver(address, { credit: 100 });
        const seen = new Set<number>();
        while (seen.size < n) {
          const d = (await receiver.receive())!;
          seen.add(d.message.body as number);
          d.accept();
        }
        assert.equal(seen.size, n);
      } finally {
        await proxy.stop();
      }
    });
  });
}
