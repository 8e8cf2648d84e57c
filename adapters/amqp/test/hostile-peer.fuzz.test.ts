// Fuzzing the client from the other end of a socket: a peer that speaks AMQP
// honestly (answers begin, attach, transfers; grants credit; sends messages)
// but damages what it writes at random: bytes mutated, frames replaced by
// others, repeated, dropped, split across writes, garbage inserted, sockets
// cut. Whatever it does, every operation of the client settles with a value
// or a typed AmqpError, within a bounded time, with nothing thrown uncaught,
// and the connection closes.
import assert from 'node:assert/strict';
import { AmqpError, Connection, Policy } from '../src/index.js';
import { encodeMessage } from '../src/message.js';
import { Writer } from '../src/codec/encoder.js';
import { fuzzCases, fuzzSeed, Random, withSeed } from './helpers/fuzz.js';
import { AMQP_HEADER, emptyFrame, frame, SASL_HEADER, ScriptedPeer, type PeerFrame, type PeerSocket } from './helpers/scripted-peer.js';

const policy = Policy.derive(Policy.Default, {
  connectTimeout: 300,
  operationTimeout: 250,
  idleTimeout: 400,
  reconnect: { initialDelay: 5, maxDelay: 20, maxAttempts: 2, resetAfter: 60_000 },
  sender: { maxQueued: 50 },
  receiver: { credit: 5, maxMessageSize: 64 * 1024 },
});
/** Every case must settle within this, or it is a hang. */
const CASE_DEADLINE_MS = 6000;

const messageBytes = (() => {
  const w = new Writer();
  encodeMessage(w, { properties: { messageId: 'm' }, body: Buffer.from('payload') });
  return w.toBuffer();
})();

/** Frames a hostile peer throws in: plausible performatives with random fields. */
function randomFrame(r: Random): Buffer {
  const handle = r.int(4);
  const n = (): number => r.pick([0, 1, 2, 7, 255, 65535, 0xffffffff]);
  switch (r.int(11)) {
    case 0:
      return frame('flow', { nextIncomingId: n(), incomingWindow: n(), nextOutgoingId: n(), outgoingWindow: n(), handle, deliveryCount: n(), linkCredit: n(), drain: r.chance(0.5), echo: r.chance(0.5) });
    case 1:
      return frame('transfer', { handle, deliveryId: n(), deliveryTag: r.bytes(r.int(9)), messageFormat: 0, settled: r.chance(0.5), more: r.chance(0.3) }, { payload: r.chance(0.5) ? messageBytes : r.bytes(r.int(40)) });
    case 2:
      return frame('disposition', { role: r.chance(0.5), first: n(), last: n(), settled: r.chance(0.5), state: r.pick([{ type: 'accepted' }, { type: 'rejected', error: { condition: 'amqp:x' } }, { type: 'released' }]) });
    case 3:
      return frame('detach', { handle, closed: r.chance(0.5), error: r.chance(0.5) ? { condition: 'amqp:internal-error', description: 'fuzz' } : undefined });
    case 4:
      return frame('end', {}, { channel: r.int(2) });
    case 5:
      return frame('close', r.chance(0.5) ? { error: { condition: r.pick(['amqp:connection:forced', 'amqp:internal-error']) } } : {});
    case 6:
      return frame('begin', { remoteChannel: r.int(3), nextOutgoingId: n(), incomingWindow: n(), outgoingWindow: n() }, { channel: r.int(3) });
    case 7:
      return frame('attach', { name: 'x', handle, role: r.chance(0.5), source: { address: 'q' } });
    case 8:
      return frame('open', { containerId: 'again', maxFrameSize: r.pick([0, 511, 512, 4096]) });
    case 9:
      return frame(r.pick(['sasl-outcome', 'sasl-mechanisms']), r.chance(0.5) ? { code: 0 } : { saslServerMechanisms: ['ANONYMOUS'] }, { type: r.int(2) });
    default:
      return emptyFrame();
  }
}

/** Honest answers to one client frame (AMQP 1.0 §2.5-2.7), before damage. */
function answers(f: PeerFrame, state: { nextDelivery: number }): Buffer[] {
  const b = f.body;
  switch (f.name) {
    case 'begin':
      return [frame('begin', { remoteChannel: f.channel, nextOutgoingId: 0, incomingWindow: 100, outgoingWindow: 100 }, { channel: f.channel })];
    case 'attach': {
      const reply = frame('attach', { name: b.name, handle: b.handle, role: !b.role, source: b.source, target: b.target, initialDeliveryCount: 0 }, { channel: f.channel });
      if (b.role) return [reply]; // the client receives: messages follow its credit
      return [reply, frame('flow', { nextIncomingId: 0, incomingWindow: 100, nextOutgoingId: 0, outgoingWindow: 100, handle: b.handle, deliveryCount: 0, linkCredit: 10 }, { channel: f.channel })];
    }
    case 'flow': {
      if (b.handle === undefined || !b.linkCredit) return [];
      const out: Buffer[] = [];
      for (let i = 0; i < Math.min(Number(b.linkCredit), 3); i++) {
        const id = state.nextDelivery++;
        out.push(frame('transfer', { handle: b.handle, deliveryId: id, deliveryTag: Buffer.from([id & 0xff]), messageFormat: 0, settled: false }, { channel: f.channel, payload: messageBytes }));
      }
      return out;
    }
    case 'transfer':
      return b.settled ? [] : [frame('disposition', { role: true, first: b.deliveryId, settled: true, state: { type: 'accepted' } }, { channel: f.channel })];
    case 'detach':
      return [frame('detach', { handle: b.handle, closed: true }, { channel: f.channel })];
    case 'end':
      return [frame('end', {}, { channel: f.channel })];
    case 'close':
      return [frame('close', {})];
    default:
      return [];
  }
}

/** Writes `parts`, damaged at random: mutated, replaced, repeated, dropped, split, interleaved with garbage, or cut. */
function writeDamaged(s: PeerSocket, r: Random, parts: Buffer[], hostility: number): void {
  const out: Buffer[] = [];
  for (const p of parts) {
    if (!r.chance(hostility)) {
      out.push(p);
      continue;
    }
    switch (r.int(6)) {
      case 0:
        out.push(r.mutate(p));
        break;
      case 1:
        out.push(randomFrame(r));
        break;
      case 2:
        out.push(p, p);
        break;
      case 3:
        break; // dropped
      case 4:
        out.push(r.bytes(1 + r.int(16)), p);
        break;
      default:
        out.push(randomFrame(r), p);
    }
  }
  if (r.chance(hostility / 10)) {
    s.socket.destroy();
    return;
  }
  const all = Buffer.concat(out);
  if (r.chance(0.3) && all.length > 1) {
    const cut = 1 + r.int(all.length - 1);
    s.write(all.subarray(0, cut));
    s.write(all.subarray(cut));
  } else s.write(all);
}

/** The peer's side of one socket: the handshake (damaged too), then honest answers, damaged. */
async function hostile(s: PeerSocket, r: Random, hostility: number): Promise<void> {
  // Less damage in the handshake, so that most cases get to links and deliveries.
  const early = hostility / 5;
  await s.header();
  writeDamaged(s, r, [SASL_HEADER, frame('sasl-mechanisms', { saslServerMechanisms: ['ANONYMOUS'] })], early);
  await s.next('sasl-init');
  const eager = r.chance(0.5); // outcome, AMQP header and open in one write
  writeDamaged(s, r, [frame('sasl-outcome', { code: 0 }), ...(eager ? [AMQP_HEADER, frame('open', { containerId: 'fuzz', maxFrameSize: 4096 })] : [])], early);
  await s.header();
  if (!eager) writeDamaged(s, r, [AMQP_HEADER, frame('open', { containerId: 'fuzz', maxFrameSize: 4096 })], early);
  const state = { nextDelivery: 0 };
  for (;;) {
    const f = await s.next();
    writeDamaged(s, r, answers(f, state), hostility);
  }
}

/** What an application does: connect, send, receive, settle, close. Every step may fail, but only with AmqpError. */
async function workload(conn: Connection, outcomes: unknown[]): Promise<void> {
  const settle = async <T>(p: Promise<T>): Promise<T | undefined> => {
    try {
      const v = await p;
      outcomes.push(v);
      return v;
    } catch (e) {
      outcomes.push(e);
      return undefined;
    }
  };
  if ((await settle(conn.open())) === undefined) return;
  const sender = await settle(conn.createSender('fuzz'));
  if (sender) await Promise.all([1, 2, 3, 4, 5].map((i) => settle(sender.send({ body: i }))));
  const receiver = await settle(conn.createReceiver('fuzz'));
  if (receiver) {
    for (let i = 0; i < 3; i++) {
      const d = await settle(receiver.receive());
      if (!d) break;
      try {
        // eslint-disable-next-line @typescript-eslint/no-unused-expressions -- reading the message decodes it, which is what may throw
        d.message;
        d.accept();
      } catch (e) {
        outcomes.push(e);
      }
    }
  }
}

describe('AMQP client fuzzed by a hostile peer over a socket', function () {
  this.timeout(0);
  const uncaught: unknown[] = [];
  const record = (e: unknown): void => {
    uncaught.push(e);
  };
  before(() => {
    process.on('uncaughtException', record);
    process.on('unhandledRejection', record);
  });
  after(() => {
    process.off('uncaughtException', record);
    process.off('unhandledRejection', record);
  });

  it(`every operation settles with a value or a typed AmqpError, in bounded time (${fuzzCases(30)} peers)`, async () => {
    const seed = fuzzSeed(0x5eed);
    const memoryBefore = process.memoryUsage().arrayBuffers;
    for (let i = 0, cases = fuzzCases(30); i < cases; i++) {
      const caseSeed = i === 0 ? seed : (seed + Math.imul(i, 0x9e3779b9)) >>> 0;
      await withSeed(caseSeed, async () => {
        const r = new Random(caseSeed);
        const hostility = r.pick([0.05, 0.2, 0.5]);
        const peer = await ScriptedPeer.start((s) => hostile(s, r, hostility));
        const conn = new Connection(peer.endpoint, policy);
        const outcomes: unknown[] = [];
        let timer: NodeJS.Timeout | undefined;
        try {
          const deadline = new Promise<'hang'>((resolve) => {
            timer = setTimeout(() => resolve('hang'), CASE_DEADLINE_MS);
          });
          const result = await Promise.race([
            workload(conn, outcomes)
              .then(() => conn.close())
              .then(() => 'done' as const),
            deadline,
          ]);
          assert.equal(result, 'done', `the client hung (hostility ${hostility}; outcomes so far: ${outcomes.map(String).join('; ')})`);
          assert.equal(conn.state, 'closed');
          for (const o of outcomes) if (o instanceof Error) assert.ok(o instanceof AmqpError, `untyped error: ${o.stack}`);
          assert.deepEqual(uncaught, []);
        } finally {
          clearTimeout(timer);
          await peer.stop();
        }
      });
    }
    // Nothing of the cases stays behind: the client holds no buffers once its connections are closed.
    assert.ok(process.memoryUsage().arrayBuffers - memoryBefore < 64 * 1024 * 1024);
  });
});
