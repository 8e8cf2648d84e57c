// A raw-TCP AMQP peer whose every byte a test scripts: it reads the client's
// protocol headers and frames (decoded with the package's own tables) and
// writes whatever the test asks, in exactly the TCP writes the test asks for.
// Hostile and unusual peers are written with it; rhea cannot misbehave on demand.
import net from 'node:net';
import { compositeOf, fromList } from '../../src/codec/described.js';
import { Reader } from '../../src/codec/decoder.js';
import { Writer } from '../../src/codec/encoder.js';
import { AMQP_HEADER, SASL_HEADER, writeFrame } from '../../src/frames.js';
import '../../src/performatives.js';
import '../../src/sasl.js';

export { AMQP_HEADER, SASL_HEADER };

/** Descriptor codes of the frames a peer writes or reads (AMQP 1.0 §2.7, §5.3.3). */
const CODES: Record<string, number> = {
  open: 0x10,
  begin: 0x11,
  attach: 0x12,
  flow: 0x13,
  transfer: 0x14,
  disposition: 0x15,
  detach: 0x16,
  end: 0x17,
  close: 0x18,
  'sasl-mechanisms': 0x40,
  'sasl-init': 0x41,
  'sasl-challenge': 0x42,
  'sasl-response': 0x43,
  'sasl-outcome': 0x44,
};

export interface PeerFrame {
  type: number;
  channel: number;
  name: string;
  body: Record<string, unknown>;
  payload: Buffer;
}

/** One encoded frame. SASL frames get frame type 1 unless `type` says otherwise. */
export function frame(name: string, body: object, options: { channel?: number; type?: number; payload?: Uint8Array } = {}): Buffer {
  const composite = compositeOf(BigInt(CODES[name]));
  if (composite === undefined) throw new Error(`no composite ${name}`);
  const w = new Writer();
  writeFrame(w, options.type ?? (name.startsWith('sasl-') ? 1 : 0), options.channel ?? 0, composite, body, options.payload);
  return w.toBuffer();
}

/** An empty frame (a heartbeat, §2.4.5). */
export const emptyFrame = (): Buffer => Buffer.from([0, 0, 0, 8, 2, 0, 0, 0]);

/** One connection accepted by the peer. */
export class PeerSocket {
  /** Every frame the client sent, in order. */
  readonly frames: PeerFrame[] = [];
  closed = false;
  private pending = Buffer.alloc(0);
  private wake: (() => void) | null = null;

  constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.pending = Buffer.concat([this.pending, chunk]);
      this.notify();
    });
    socket.on('close', () => {
      this.closed = true;
      this.notify();
    });
    socket.on('error', () => undefined);
  }

  /** The client's next 8-byte protocol header. */
  async header(): Promise<Buffer> {
    await this.bytes(8);
    const h = this.pending.subarray(0, 8);
    this.pending = this.pending.subarray(8);
    return h;
  }

  /** The client's next frame, skipping heartbeats; fails if it is not `name` (when given). */
  async next(name?: string): Promise<PeerFrame> {
    for (;;) {
      const f = await this.nextOrEmpty();
      if (f === 'empty') continue;
      if (name !== undefined && f.name !== name) throw new Error(`expected ${name} from the client, got ${f.name}`);
      return f;
    }
  }

  /** The client's next frame, or 'empty' for an empty frame (a heartbeat, §2.4.5). */
  async nextOrEmpty(): Promise<PeerFrame | 'empty'> {
    await this.bytes(8);
    const size = this.pending.readUInt32BE(0);
    await this.bytes(size);
    const raw = this.pending.subarray(0, size);
    this.pending = this.pending.subarray(size);
    const start = raw[4] * 4;
    if (start === size) return 'empty';
    const r = new Reader(raw, start + 1);
    const composite = compositeOf(r.read());
    if (composite === undefined) throw new Error('client sent an unknown performative');
    const f = { type: raw[5], channel: raw.readUInt16BE(6), name: composite.name, body: fromList(composite, r.read()) as Record<string, unknown>, payload: raw.subarray(r.pos) };
    this.frames.push(f);
    return f;
  }

  /** Writes the buffers as one TCP write. */
  write(...parts: Buffer[]): void {
    if (!this.socket.destroyed) this.socket.write(Buffer.concat(parts));
  }

  /** Resolves once the client closed the socket. */
  async whenClosed(): Promise<void> {
    while (!this.closed)
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
  }

  /** SASL ANONYMOUS up to (not including) the outcome: reads the header and sasl-init. */
  async saslUntilOutcome(): Promise<void> {
    await this.header();
    this.write(SASL_HEADER, frame('sasl-mechanisms', { saslServerMechanisms: ['ANONYMOUS'] }));
    await this.next('sasl-init');
  }

  /** The rest of a normal start: outcome, AMQP headers and opens, the client's begin answered. */
  async openAndBegin(open: Record<string, unknown> = {}): Promise<void> {
    this.write(frame('sasl-outcome', { code: 0 }));
    await this.header();
    this.write(AMQP_HEADER, frame('open', { containerId: 'scripted', ...open }));
    await this.next('open');
    await this.next('begin');
    this.write(frame('begin', { remoteChannel: 0, nextOutgoingId: 0, incomingWindow: 2048, outgoingWindow: 2048 }));
  }

  private async bytes(n: number): Promise<void> {
    while (this.pending.length < n) {
      if (this.closed) throw new Error('client closed the socket');
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
  }

  private notify(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }
}

/** A listener on port 0 that runs `script` for every connection (errors in a script end that socket). */
export class ScriptedPeer {
  readonly sockets: PeerSocket[] = [];
  /** When each connection was accepted (ms, performance.now()). */
  readonly acceptedAt: number[] = [];
  url = '';
  private readonly server: net.Server;

  private constructor(script: (s: PeerSocket, index: number) => Promise<void> | void) {
    this.server = net.createServer((socket) => {
      const s = new PeerSocket(socket);
      this.acceptedAt.push(performance.now());
      this.sockets.push(s);
      Promise.resolve()
        .then(() => script(s, this.sockets.length - 1))
        .catch(() => socket.destroy());
    });
  }

  static async start(script: (s: PeerSocket, index: number) => Promise<void> | void): Promise<ScriptedPeer> {
    const peer = new ScriptedPeer(script);
    await new Promise<void>((resolve) => peer.server.listen(0, '127.0.0.1', resolve));
    peer.url = `amqp://127.0.0.1:${(peer.server.address() as net.AddressInfo).port}`;
    return peer;
  }

  get endpoint(): { host: string; port: number; tls: false } {
    return { host: '127.0.0.1', port: (this.server.address() as net.AddressInfo).port, tls: false };
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
