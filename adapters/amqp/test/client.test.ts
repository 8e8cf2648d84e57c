// Integration tests of the client against an in-process rhea peer, over real sockets.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import type { EventContext } from 'rhea';
import { Client, DeliveryError, Policy, SendQueueFullError, type Connection, type Delivery } from '../src/index.js';
import { RheaPeer } from './helpers/rhea-peer.js';

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const until = async (cond: () => boolean, ms = 5000): Promise<void> => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
};

describe('AMQP client against an in-process rhea peer', () => {
  let peer: RheaPeer;
  let conn: Connection | undefined;
  afterEach(async () => {
    await conn?.close();
    conn = undefined;
    await peer.stop();
  });

  describe('send and receive', () => {
    beforeEach(async () => {
      peer = await RheaPeer.start();
    });

    it('sends a message the peer accepts and receives it back with every section', async () => {
      conn = await Client.connect(peer.url);
      const sender = await conn.createSender('telemetry');
      const outcome = await sender.send({
        header: { durable: true, priority: 7 },
        properties: { messageId: 'm-1', contentType: 'application/octet-stream', creationTime: new Date(1700000000123) },
        body: Buffer.from('hello'),
        applicationProperties: { device: 'd1', seq: 1 },
        messageAnnotations: { 'x-opt-partition-key': 'p1' },
      });
      assert.deepEqual(outcome, { type: 'accepted' });
      const got = peer.received.get('telemetry')![0];
      assert.equal(Buffer.from((got.body as { content: Buffer }).content).toString(), 'hello');
      assert.deepEqual(got.application_properties, { device: 'd1', seq: 1 });
      assert.deepEqual(got.message_annotations, { 'x-opt-partition-key': 'p1' });
      assert.equal(got.message_id, 'm-1');
      assert.equal(got.durable, true);
      assert.equal(got.priority, 7);

      const receiver = await conn.createReceiver('telemetry', { credit: 10 });
      const d = (await receiver.receive())!;
      const m = d.message;
      assert.equal((m.body as Buffer).toString(), 'hello');
      assert.equal(m.bodyType, 'data');
      assert.deepEqual(m.applicationProperties, { device: 'd1', seq: 1 });
      assert.equal(m.properties?.messageId, 'm-1');
      assert.equal(m.properties?.creationTime?.getTime(), 1700000000123);
      assert.equal(m.header?.durable, true);
      d.accept();
    });

    it('iterates deliveries with for-await while auto credit refills (250 messages, credit 20)', async () => {
      for (let i = 0; i < 250; i++) peer.enqueue('q', { body: i });
      conn = await Client.connect(peer.url);
      const receiver = await conn.createReceiver('q', { credit: 20 });
      const seen: number[] = [];
      for await (const d of receiver) {
        seen.push(d.message.body as number);
        d.accept();
        assert.ok(receiver.credit + receiver.buffered <= 20);
        if (seen.length === 250) break;
      }
      assert.deepEqual(
        seen,
        Array.from({ length: 250 }, (_, i) => i),
      );
    });

    it('sends pre-encoded bytes with a message-format (Event Hubs batch format)', async () => {
      const formats: number[] = [];
      peer.container.on('message', (ctx: EventContext) => {
        formats.push((ctx.delivery as unknown as { format: number }).format);
      });
      conn = await Client.connect(peer.url);
      const sender = await conn.createSender('raw');
      const { Writer, encodeMessage } = await import('../src/index.js');
      const w = new Writer();
      encodeMessage(w, { body: 'pre-encoded' });
      await sender.sendRaw(w.toBuffer(), { messageFormat: 0x80013700 });
      await sender.sendRaw(w.toBuffer());
      assert.deepEqual(formats, [0x80013700, 0]);
      assert.equal(peer.received.get('raw')![1].body, 'pre-encoded');
    });
  });

  describe('credit', () => {
    let grant: (n: number) => void;
    beforeEach(async () => {
      peer = await RheaPeer.start({ creditWindow: 0 });
      peer.onLinkOpen = (ctx) => {
        if (ctx.receiver) grant = (n) => ctx.receiver!.add_credit(n);
      };
    });

    it('queues sends while there is no credit and sends them as credit is granted', async () => {
      conn = await Client.connect(peer.url);
      const sender = await conn.createSender('c');
      const results = [1, 2, 3, 4, 5].map((i) => sender.send({ body: i }));
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(peer.received.get('c'), undefined);
      assert.equal(sender.queued, 5);
      grant(2);
      await Promise.all(results.slice(0, 2));
      await new Promise((r) => setTimeout(r, 30));
      assert.deepEqual(
        peer.received.get('c')!.map((m) => m.body),
        [1, 2],
      );
      assert.equal(sender.queued, 3);
      grant(10);
      await Promise.all(results);
      assert.deepEqual(
        peer.received.get('c')!.map((m) => m.body),
        [1, 2, 3, 4, 5],
      );
    });

    it('answers a drain with nothing to send by using up the credit (§2.6.7)', async () => {
      let drainRequest: () => void = () => undefined;
      let drained = false;
      peer.onLinkOpen = (ctx) => {
        if (!ctx.receiver) return;
        const r = ctx.receiver as unknown as { add_credit(n: number): void; drain_credit(): void; credit: number };
        drainRequest = () => {
          r.add_credit(10);
          r.drain_credit();
        };
      };
      peer.container.on('receiver_drained', () => {
        drained = true;
      });
      conn = await Client.connect(peer.url);
      const sender = await conn.createSender('drain');
      drainRequest();
      await until(() => drained);
      assert.equal(sender.credit, 0);
    });

    it('rejects sends beyond the bounded queue with ERR_AMQP_SEND_QUEUE_FULL', async () => {
      conn = await Client.connect(peer.url, Policy.Default, { sender: { maxQueued: 2 } });
      const sender = await conn.createSender('c');
      const a = sender.send({ body: 1 });
      const b = sender.send({ body: 2 });
      await assert.rejects(sender.send({ body: 3 }), (e: unknown) => e instanceof SendQueueFullError && e.code === 'ERR_AMQP_SEND_QUEUE_FULL' && e.condition === 'amqp:resource-limit-exceeded');
      grant(2);
      await Promise.all([a, b]);
    });
  });

  describe('multi-frame transfers', () => {
    beforeEach(async () => {
      peer = await RheaPeer.start({ maxFrameSize: 64 * 1024 });
    });

    it('sends and receives a 10 MiB message split at max-frame-size both ways', async () => {
      conn = await Client.connect(peer.url, Policy.Default, { maxFrameSize: 32 * 1024 });
      const big = randomBytes(10 * 1024 * 1024);
      const sender = await conn.createSender('big');
      await sender.send({ body: big, applicationProperties: { n: 1 } });
      const got = peer.received.get('big')![0];
      assert.equal(sha((got.body as { content: Buffer }).content), sha(big));

      const receiver = await conn.createReceiver('big', { credit: 1 });
      const d = (await receiver.receive())!;
      assert.equal((d.message.body as Buffer).length, big.length);
      assert.equal(sha(d.message.body as Buffer), sha(big));
      d.accept();
    });
  });

  describe('settle modes and outcomes', () => {
    beforeEach(async () => {
      peer = await RheaPeer.start();
    });

    it('pre-settled sends resolve without waiting for the peer and arrive settled', async () => {
      const settled: boolean[] = [];
      peer.container.on('message', (ctx: EventContext) => {
        settled.push((ctx.delivery as unknown as { remote_settled: boolean }).remote_settled);
      });
      conn = await Client.connect(peer.url, Policy.Default, { sender: { settleMode: 'settled' } });
      const sender = await conn.createSender('s');
      await Promise.all([1, 2, 3].map((i) => sender.send({ body: i })));
      await until(() => settled.length === 3);
      assert.deepEqual(settled, [true, true, true]);
      assert.equal(sender.unsettled, 0);
    });

    for (const [outcome, expected] of [
      ['reject', 'rejected'],
      ['release', 'released'],
      ['modify', 'modified'],
    ] as const) {
      it(`rejects the send with DeliveryError when the peer answers ${expected}`, async () => {
        peer.outcome = () => outcome;
        conn = await Client.connect(peer.url);
        const sender = await conn.createSender('o');
        await assert.rejects(sender.send({ body: 'x' }), (e: unknown) => {
          assert.ok(e instanceof DeliveryError);
          assert.equal(e.outcome, expected);
          if (expected === 'rejected') {
            assert.equal(e.condition, 'amqp:precondition-failed');
            assert.equal(e.description, 'rejected by test peer');
          }
          if (expected === 'modified') assert.equal(e.state.deliveryFailed, true);
          return true;
        });
      });
    }

    it('settles received deliveries with accept, reject, release and modify', async () => {
      const outcomes: string[] = [];
      peer.container.on('settled', (ctx: EventContext) => {
        outcomes.push((ctx.delivery as unknown as { remote_state: { constructor: { composite_type: string } } }).remote_state.constructor.composite_type);
      });
      for (let i = 0; i < 4; i++) peer.enqueue('d', { body: i });
      conn = await Client.connect(peer.url);
      const receiver = await conn.createReceiver('d', { credit: 10 });
      const ds: Delivery[] = [];
      for (let i = 0; i < 4; i++) ds.push((await receiver.receive())!);
      ds[0].accept();
      ds[1].reject({ condition: 'amqp:invalid-field', description: 'bad' });
      ds[2].release();
      ds[3].modify({ deliveryFailed: true });
      await until(() => outcomes.length === 4);
      assert.deepEqual(outcomes, ['accepted', 'rejected', 'released', 'modified']);
      assert.ok(ds.every((d) => d.settled));
    });

    it("a receiver asking for settle-second settles first when the peer's attach answers first", async () => {
      const settled: boolean[] = [];
      peer.container.on('accepted', (ctx: EventContext) => settled.push((ctx.delivery as unknown as { remote_settled: boolean }).remote_settled));
      peer.enqueue('second', { body: 'x' });
      conn = await Client.connect(peer.url, Policy.Default, { receiver: { rcvSettleMode: 'second' } });
      const receiver = await conn.createReceiver('second', { credit: 1 });
      const d = (await receiver.receive())!;
      assert.equal(receiver.settlesSecond, false); // rhea's attach says rcv-settle-mode first
      d.accept();
      assert.equal(d.settled, true);
      await until(() => settled.length === 1);
      assert.deepEqual(settled, [true]);
    });

    it("a sender in receiver-settles-second mode settles after the peer's outcome", async () => {
      const modes: number[] = [];
      peer.container.on('receiver_open', (ctx: EventContext) => modes.push((ctx.receiver as unknown as { remote: { attach: { rcv_settle_mode: number } } }).remote.attach.rcv_settle_mode));
      conn = await Client.connect(peer.url, Policy.Default, { sender: { rcvSettleMode: 'second' } });
      const sender = await conn.createSender('second');
      assert.deepEqual(await sender.send({ body: 1 }), { type: 'accepted' });
      assert.deepEqual(modes, [1]);
      assert.equal(sender.unsettled, 0);
    });

    it('receive() resolves null once the receiver is closed locally', async () => {
      conn = await Client.connect(peer.url);
      const receiver = await conn.createReceiver('empty');
      const pending = receiver.receive();
      await receiver.close();
      assert.equal(await pending, null);
      assert.equal(await receiver.receive(), null);
    });

    it('sends one disposition range for consecutive accepts', async () => {
      for (let i = 0; i < 50; i++) peer.enqueue('r', { body: i });
      let dispositions = 0;
      conn = await Client.connect(peer.url);
      const receiver = await conn.createReceiver('r', { credit: 50 });
      await until(() => receiver.buffered === 50);
      const origSend = conn.sendFrame.bind(conn);
      conn.sendFrame = (ch, c, body, payload, type) => {
        if (c.name === 'disposition') dispositions++;
        origSend(ch, c, body, payload, type);
      };
      for (let i = 0; i < 50; i++) (await receiver.receive())!.accept();
      await until(() => peer.queues.get('r')!.length === 0);
      await new Promise((r) => setTimeout(r, 20));
      assert.equal(dispositions, 1);
    });
  });
});
