// What a connection writes (AMQP 1.0 §2.3). Frames are appended to one
// buffer, encoded in place, and the buffer goes out in one socket write per
// event-loop turn, however many frames the turn produced.
//
// Peers without TCP_NODELAY (rhea's default, some brokers) hold a small frame
// until their previous one is acknowledged, and our kernel delays that
// acknowledgement (40 ms on Linux) unless we write something. A sender out of
// credit has nothing to write, and the peer's flow granting credit would wait
// for the timer. So when the peer's header or a performative came in and the
// turn has nothing to answer it with, an empty frame (§2.4.5, 8 bytes) goes
// out: it carries the acknowledgement at once. Empty frames are never
// answered, so two peers doing this cannot ping-pong.
import type { Socket } from 'node:net';
import type { Composite } from './codec/described.js';
import { Writer } from './codec/encoder.js';
import { describeFrame, writeEmptyFrame, writeFrame } from './frames.js';
import { log } from './log.js';

export class Outbound {
  readonly out = new Writer(64 * 1024);
  /** False while the socket's buffer is full; senders wait for its 'drain'. */
  writable = true;
  /** Whether an empty frame may answer a read: only once our open is out. */
  mayReply = false;
  private socket: Socket | null = null;
  private scheduled = false;
  private replyOwed = false;

  constructor(
    /** Appends what is pending (dispositions) before a write. */
    private readonly beforeWrite: () => void,
    /** Told of every write (the heartbeat counts them). */
    private readonly onWrite: () => void,
  ) {}

  /** A new socket: nothing buffered for the old one is sent on it. */
  use(socket: Socket): void {
    this.socket = socket;
    this.writable = true;
    this.mayReply = false;
    this.replyOwed = false;
    this.out.reset();
  }

  frame<T extends object>(type: number, channel: number, c: Composite<T>, body: T, payload?: Uint8Array): void {
    if (log.frames.enabled) log.frames(describeFrame('->', channel, c.name, body, payload?.length));
    writeFrame(this.out, type, channel, c, body, payload);
    this.schedule();
  }

  raw(bytes: Buffer): void {
    this.out.bytes(bytes);
    this.schedule();
  }

  /** An empty frame now (a heartbeat). */
  heartbeat(): void {
    writeEmptyFrame(this.out);
    this.flush();
  }

  /** The peer's header or a performative was read: this turn owes it an answer (see above). */
  owesReply(): void {
    if (this.replyOwed) return;
    this.replyOwed = true;
    this.schedule();
  }

  schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  /** Writes everything buffered as one chunk, or the empty frame a read is owed. */
  flush(): void {
    this.scheduled = false;
    this.beforeWrite();
    const owed = this.replyOwed;
    this.replyOwed = false;
    if (this.out.pos === 0) {
      if (!owed || !this.mayReply) return;
      writeEmptyFrame(this.out);
    }
    if (!this.socket || this.socket.destroyed) {
      this.out.reset();
      return;
    }
    const chunk = this.out.toBuffer();
    this.out.reset();
    if (log.socket.enabled) log.socket('-> %d bytes', chunk.length);
    this.onWrite();
    if (!this.socket.write(chunk)) this.writable = false;
  }
}
