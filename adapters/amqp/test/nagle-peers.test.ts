// Peers without TCP_NODELAY (rhea's default, and some brokers'): their kernel
// holds a small frame until the previous one is acknowledged, and ours delays
// that acknowledgement unless we write something. So the client answers any
// performative it has nothing to say to with an empty frame at once, and
// never answers an empty frame. Scripted raw-TCP peers and rhea, real sockets.
import assert from 'node:assert/strict';
import type { AddressInfo, Server } from 'node:net';
import rhea from 'rhea';
import { Client, Connection, Policy } from '../src/index.js';
import { frame, emptyFrame, ScriptedPeer, type PeerFrame } from './helpers/scripted-peer.js';

/** `p`, or 'nothing' if it has not settled within `ms` (a failing client says nothing at all). */
const within = <T>(p: Promise<T>, ms: number): Promise<T | 'nothing'> => Promise.race([p, new Promise<'nothing'>((resolve) => setTimeout(() => resolve('nothing'), ms).unref())]);

describe('AMQP client with peers that do not set TCP_NODELAY', () => {
  let peer: ScriptedPeer | undefined;
  afterEach(async () => {
    await peer?.stop();
    peer = undefined;
  });

  it("answers an attach it cannot act on yet with an empty frame at once, so the peer's flow is not held back", async () => {
    let seen: (what: PeerFrame | 'empty' | 'nothing') => void = () => undefined;
    const afterAttach = new Promise<PeerFrame | 'empty' | 'nothing'>((resolve) => {
      seen = resolve;
    });
    peer = await ScriptedPeer.start(async (s) => {
      await s.saslUntilOutcome();
      await s.openAndBegin();
      const attach = await s.next('attach');
      const { name, handle, target } = attach.body as { name: string; handle: number; target: unknown };
      s.write(frame('attach', { name, handle, role: true, target, initialDeliveryCount: 0 }));
      // A Nagle peer writes its flow only once this attach is acknowledged: the client must say something now.
      seen(await within(s.nextOrEmpty(), 2000));
      s.write(frame('flow', { nextIncomingId: 0, incomingWindow: 100, nextOutgoingId: 0, outgoingWindow: 100, handle, deliveryCount: 0, linkCredit: 10 }));
      for (;;) {
        const t = await s.next();
        if (t.name === 'transfer') s.write(frame('disposition', { role: true, first: t.body.deliveryId, settled: true, state: { type: 'accepted' } }));
      }
    });
    const conn = await new Connection(peer.endpoint, Policy.Default).open();
    try {
      const sender = await conn.createSender('q');
      assert.equal(await afterAttach, 'empty');
      assert.deepEqual(await sender.send({ body: 1 }), { type: 'accepted' });
    } finally {
      await peer.stop();
      peer = undefined;
      await conn.close();
    }
  });

  it('does not answer empty frames, so two such peers cannot ping-pong', async () => {
    let seen: (what: PeerFrame | 'empty' | 'nothing') => void = () => undefined;
    const answered = new Promise<PeerFrame | 'empty' | 'nothing'>((resolve) => {
      seen = resolve;
    });
    peer = await ScriptedPeer.start(async (s) => {
      await s.saslUntilOutcome();
      await s.openAndBegin();
      await s.nextOrEmpty(); // the empty frame answering our begin
      s.write(emptyFrame());
      await new Promise((r) => setTimeout(r, 50)); // let the client read it on its own
      s.write(frame('flow', { nextIncomingId: 0, incomingWindow: 100, nextOutgoingId: 0, outgoingWindow: 100, echo: true }));
      seen(await within(s.nextOrEmpty(), 2000));
    });
    const conn = await new Connection(peer.endpoint, Policy.Default).open();
    try {
      const answer = await answered;
      assert.ok(answer !== 'empty' && answer !== 'nothing', `the client answered ${answer}`);
      assert.equal(answer.name, 'flow'); // the echo's answer, not a reply to the empty frame
    } finally {
      await peer.stop();
      peer = undefined;
      await conn.close();
    }
  });

  it('connects, attaches and sends to a rhea listener without TCP_NODELAY in a few round trips, not delayed-ACK timeouts', async () => {
    const container = rhea.create_container({ id: 'nagle' });
    container.on('receiver_open', (ctx) => ctx.receiver!.set_target({ address: ctx.receiver!.remote.attach.target?.address }));
    const server = container.listen({ port: 0, host: '127.0.0.1' } as never) as unknown as Server; // rhea leaves TCP_NODELAY off
    await new Promise((r) => server.once('listening', r));
    const url = `amqp://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      // Each exchange that waits on a delayed ACK costs 40 ms (Linux's minimum); two of them did (open, attach + flow).
      const times: number[] = [];
      for (let i = 0; i < 5; i++) {
        const started = performance.now();
        const conn = await Client.connect(url);
        const sender = await conn.createSender('q');
        await sender.send({ body: i });
        times.push(performance.now() - started);
        await conn.close();
      }
      times.sort((a, b) => a - b);
      assert.ok(times[0] < 60, `fastest of 5 took ${Math.round(times[0])} ms`);
    } finally {
      server.close();
    }
  });
});
