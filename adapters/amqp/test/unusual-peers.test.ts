// Peers that do what the spec allows in unusual ways, or what it forbids: the
// client connects when it can, fails fast with the real cause when it
// cannot, and backs off from a peer that keeps breaking. Scripted raw-TCP
// peers (helpers/scripted-peer.ts) and rhea, over real sockets.
import assert from 'node:assert/strict';
import { format } from 'node:util';
import createDebug from 'debug';
import rhea from 'rhea';
import type { AddressInfo, Server } from 'node:net';
import { Client, Connection, ConnectionError, LinkError, OperationTimeoutError, Policy, type PolicyOverrides } from '../src/index.js';
import { AMQP_HEADER, frame, ScriptedPeer } from './helpers/scripted-peer.js';
import { RheaPeer } from './helpers/rhea-peer.js';

const connectTo = (peer: ScriptedPeer, overrides: PolicyOverrides = {}): Promise<Connection> => new Connection(peer.endpoint, Policy.derive(Policy.Default, overrides)).open();

/** Connects and keeps the Connection object, to inspect it after open() rejected. */
async function failedConnect(peer: ScriptedPeer, overrides: PolicyOverrides): Promise<{ conn: Connection; error: unknown; ms: number }> {
  const conn = new Connection(peer.endpoint, Policy.derive(Policy.Default, overrides));
  const started = performance.now();
  const error = await conn.open().then(
    () => null,
    (e: unknown) => e,
  );
  return { conn, error, ms: performance.now() - started };
}

describe('AMQP client against unusual and hostile peers', () => {
  let peer: ScriptedPeer | undefined;
  const open: Connection[] = [];
  afterEach(async () => {
    await peer?.stop(); // first: a scripted peer does not answer our close
    peer = undefined;
    await Promise.all(open.splice(0).map((c) => c.close()));
  });

  describe('SASL', () => {
    it('connects when the peer sends its sasl-outcome, AMQP header and open in one TCP write', async () => {
      peer = await ScriptedPeer.start(async (s) => {
        await s.saslUntilOutcome();
        s.write(frame('sasl-outcome', { code: 0 }), AMQP_HEADER, frame('open', { containerId: 'eager' }));
        await s.header();
        await s.next('open');
        await s.next('begin');
        s.write(frame('begin', { remoteChannel: 0, nextOutgoingId: 0, incomingWindow: 100, outgoingWindow: 100 }));
      });
      const conn = await connectTo(peer);
      open.push(conn);
      assert.equal(conn.state, 'open');
      assert.equal(conn.remote?.containerId, 'eager');
    });

    it('refuses an AMQP open sent before the SASL outcome, as a protocol error', async () => {
      peer = await ScriptedPeer.start(async (s) => {
        await s.saslUntilOutcome();
        s.write(frame('open', { containerId: 'skips-sasl' })); // frame type 0 where only SASL frames may come
        await s.whenClosed();
      });
      const { conn, error } = await failedConnect(peer, { connectTimeout: 10_000 });
      assert.ok(error instanceof ConnectionError, String(error));
      assert.equal(error.code, 'ERR_AMQP_PROTOCOL');
      assert.match(error.message, /before the SASL outcome/);
      assert.equal(conn.state, 'closed');
      assert.equal(conn.remote, null);
    });

    it('refuses a sasl-outcome that answers nothing (sent before our sasl-init)', async () => {
      peer = await ScriptedPeer.start(async (s) => {
        await s.header();
        s.write(Buffer.from('AMQP\x03\x01\x00\x00', 'latin1'), frame('sasl-mechanisms', { saslServerMechanisms: ['ANONYMOUS'] }), frame('sasl-outcome', { code: 0 }));
        await s.whenClosed();
      });
      // ANONYMOUS answers at once, so our init went out first: this outcome is in order and accepted.
      // A mechanism that answers asynchronously has not sent its init when the outcome arrives.
      const slow = { name: 'ANONYMOUS', initialResponse: () => new Promise<Buffer>((resolve) => setImmediate(() => resolve(Buffer.alloc(0)))) };
      const { error } = await failedConnect(peer, { sasl: slow, connectTimeout: 10_000 });
      assert.ok(error instanceof ConnectionError, String(error));
      assert.equal(error.code, 'ERR_AMQP_PROTOCOL');
      assert.match(error.message, /sasl-outcome before our sasl-init/);
    });
  });

  describe('connecting is one bounded attempt', () => {
    it('fails at once with the real cause when the peer drops the socket after its open, and does not retry', async () => {
      peer = await ScriptedPeer.start(async (s) => {
        await s.saslUntilOutcome();
        s.write(frame('sasl-outcome', { code: 0 }));
        await s.header();
        s.write(AMQP_HEADER, frame('open', { containerId: 'breaks' }));
        await s.next('open');
        await s.next('begin');
        s.socket.destroy();
      });
      const { conn, error, ms } = await failedConnect(peer, { operationTimeout: 15_000 });
      assert.ok(error instanceof ConnectionError, String(error));
      assert.equal(error.code, 'ERR_AMQP_SOCKET');
      assert.match(error.message, /closed while waiting for the peer's begin/);
      assert.ok(ms < 5000, `took ${Math.round(ms)} ms`);
      assert.equal(conn.state, 'closed'); // final: no reconnect can follow
      assert.equal(peer.sockets.length, 1);
    });

    it('gives up after connectTimeout, naming the step, when the peer opens but never begins', async () => {
      peer = await ScriptedPeer.start(async (s) => {
        await s.saslUntilOutcome();
        s.write(frame('sasl-outcome', { code: 0 }));
        await s.header();
        s.write(AMQP_HEADER, frame('open', { containerId: 'mute' }));
        await s.whenClosed();
      });
      const { conn, error, ms } = await failedConnect(peer, { connectTimeout: 300, operationTimeout: 15_000 });
      assert.ok(error instanceof OperationTimeoutError, String(error));
      assert.match(error.message, /timed out after 300 ms waiting for the peer's begin/);
      assert.ok(ms < 5000, `took ${Math.round(ms)} ms`);
      assert.equal(conn.state, 'closed');
      assert.equal(peer.sockets.length, 1);
    });

    it('backs off more and more from a peer that accepts each reconnect and breaks it after its open', async () => {
      peer = await ScriptedPeer.start(async (s, index) => {
        await s.saslUntilOutcome();
        if (index === 0) {
          await s.openAndBegin();
          return;
        } // the first connection works
        s.write(frame('sasl-outcome', { code: 0 }));
        await s.header();
        s.write(AMQP_HEADER, frame('open', { containerId: 'flaky' }));
        await s.next('open');
        s.socket.destroy();
      });
      const conn = await connectTo(peer, { reconnect: { initialDelay: 20, multiplier: 2, maxDelay: 10_000, jitter: 0, resetAfter: 60_000 } });
      open.push(conn);
      peer.sockets[0].socket.destroy();
      while (peer.sockets.length < 6) await new Promise((r) => conn.once('disconnected', r));
      const t = peer.acceptedAt;
      const gaps = t.slice(2, 6).map((at, i) => at - t[i + 1]); // between reconnect attempts 1..5
      for (let i = 1; i < gaps.length; i++) assert.ok(gaps[i] > gaps[i - 1] * 1.5, `gaps ${gaps.map(Math.round).join(', ')} ms do not grow`);
    });
  });

  describe('links', () => {
    it("proceeds with a sender when the peer answers a null target and then grants credit (rhea's default listener)", async () => {
      const lines: string[] = [];
      const previous = createDebug.disable();
      createDebug.enable('nitrogen:amqp:link');
      const log = createDebug.log;
      createDebug.log = (...args: unknown[]) => {
        lines.push(format(...args));
      };
      const container = rhea.create_container({ id: 'bare' });
      const server = container.listen({ port: 0, host: '127.0.0.1' } as never) as unknown as Server;
      try {
        await new Promise((r) => server.once('listening', r));
        const got: unknown[] = [];
        container.on('message', (ctx) => got.push(ctx.message!.body));
        const conn = await Client.connect(`amqp://127.0.0.1:${(server.address() as AddressInfo).port}`, Policy.Default, { operationTimeout: 15_000 });
        open.push(conn);
        const started = performance.now();
        const sender = await conn.createSender('anything');
        assert.ok(performance.now() - started < 5000);
        assert.equal(sender.target, undefined);
        assert.deepEqual(await sender.send({ body: 'through' }), { type: 'accepted' });
        assert.deepEqual(got, ['through']);
        assert.ok(
          lines.some((l) => /null target; refused if a detach follows/.test(l)),
          lines.join('\n'),
        );
        assert.ok(
          lines.some((l) => /a flow followed the null target: proceeding as attached/.test(l)),
          lines.join('\n'),
        );
      } finally {
        createDebug.log = log;
        createDebug.enable(previous);
        server.close();
      }
    });

    it("fails a link at once when a detach follows the null terminus, with the peer's reason", async () => {
      peer = await ScriptedPeer.start(async (s) => {
        await s.saslUntilOutcome();
        await s.openAndBegin();
        for (;;) {
          const attach = await s.next('attach');
          const { name, handle, role } = attach.body as { name: string; handle: number; role: boolean };
          s.write(frame('attach', { name, handle, role: !role }));
          s.write(frame('detach', { handle, closed: true, error: { condition: 'amqp:unauthorized-access', description: `no ${role ? 'receiving' : 'sending'} here` } }));
          await s.next('detach');
        }
      });
      const conn = await connectTo(peer, { operationTimeout: 15_000 });
      open.push(conn);
      const started = performance.now();
      await assert.rejects(conn.createSender('guarded'), (e: unknown) => e instanceof LinkError && e.condition === 'amqp:unauthorized-access' && e.description === 'no sending here');
      await assert.rejects(conn.createReceiver('guarded'), (e: unknown) => e instanceof LinkError && e.description === 'no receiving here');
      assert.ok(performance.now() - started < 5000);
      assert.equal(conn.state, 'open');
    });
  });

  describe('presets', () => {
    it('Policy.ActiveMQ asks for what ActiveMQ 5 announces in its open (131,072-byte frames, 15 s idle-time-out)', async () => {
      const activemq = { containerId: 'localhost', maxFrameSize: 131_072, channelMax: 32_767, idleTimeOut: 15_000 };
      let ours: Record<string, unknown> = {};
      peer = await ScriptedPeer.start(async (s) => {
        await s.saslUntilOutcome();
        s.write(frame('sasl-outcome', { code: 0 }));
        await s.header();
        s.write(AMQP_HEADER, frame('open', activemq));
        ours = (await s.next('open')).body;
        await s.next('begin');
        s.write(frame('begin', { remoteChannel: 0, nextOutgoingId: 0, incomingWindow: 100, outgoingWindow: 100 }));
      });
      open.push(await new Connection(peer.endpoint, Policy.ActiveMQ).open());
      assert.equal(ours.maxFrameSize, activemq.maxFrameSize);
      assert.equal(ours.idleTimeOut, activemq.idleTimeOut);
    });
  });

  describe("ending a receiver's iteration", () => {
    let rheaPeer: RheaPeer;
    beforeEach(async () => {
      rheaPeer = await RheaPeer.start();
    });
    afterEach(async () => {
      await rheaPeer.stop();
    });

    it('closing the connection ends a for-await loop quietly, not with an exception', async () => {
      const conn = await Client.connect(rheaPeer.url);
      const receiver = await conn.createReceiver('quiet');
      rheaPeer.enqueue('quiet', { body: 1 });
      let seen = 0;
      const loop = (async () => {
        for await (const d of receiver) {
          seen++;
          d.accept();
        }
        return 'ended';
      })();
      while (seen < 1) await new Promise((r) => setImmediate(r));
      await conn.close();
      assert.equal(await loop, 'ended');
      assert.equal(await receiver.receive(), null);
    });

    it('ending the session ends a for-await loop on its receiver quietly', async () => {
      const conn = await Client.connect(rheaPeer.url);
      open.push(conn);
      const session = await conn.createSession();
      const receiver = await session.createReceiver('quiet-session');
      const loop = (async () => {
        for await (const d of receiver) d.accept();
        return 'ended';
      })();
      await session.end();
      assert.equal(await loop, 'ended');
    });
  });
});
