// What a connection reads from its socket (AMQP 1.0 §2.2, §5.3.2): the peer's
// protocol header, then frames, with the layer switching from SASL to AMQP
// at the SASL outcome. The switch happens between two frames of the same
// chunk when the peer sends its outcome, AMQP header and open in one write:
// the frame handler says the rest is no longer SASL, and the rest is read as
// the next header.
import { ConnectionError, Condition } from './errors.js';
import { FrameParser } from './frames.js';

const HEADER_SIZE = 8;
const NOTHING = Buffer.alloc(0);

/** Receives each frame; true when the bytes after it start a new protocol header. */
export type InboundFrameHandler = (type: number, channel: number, frame: Buffer, bodyStart: number) => boolean;

export class Inbound {
  private parser: FrameParser | null = null;
  private header: Buffer | null = null;
  /** A header split across chunks: its first bytes. */
  private headerStart: Buffer | null = null;

  constructor(
    private readonly onFrame: InboundFrameHandler,
    private readonly onHeader: (header: Buffer) => void,
  ) {}

  /** Expects `header` next (§2.2), then frames of at most `maxFrameSize` bytes. */
  expect(header: Buffer, maxFrameSize: number): void {
    this.header = header;
    this.headerStart = null;
    this.parser = new FrameParser((t, ch, f, s) => this.onFrame(t, ch, f, s));
    this.parser.maxFrameSize = maxFrameSize;
  }

  /** Forgets everything (a new socket). */
  reset(): void {
    this.parser = null;
    this.header = null;
    this.headerStart = null;
  }

  /** Reads one chunk; throws AmqpErrors (framing, decode, protocol) on bad input. */
  push(chunk: Buffer): void {
    while (chunk.length > 0 && this.parser !== null) {
      if (this.header !== null) chunk = this.checkHeader(chunk);
      if (chunk.length > 0) chunk = this.parser.push(chunk);
    }
  }

  /** §2.2: the peer answers with its protocol header; a different one means it refuses ours. */
  private checkHeader(chunk: Buffer): Buffer {
    const expected = this.header!;
    const all = this.headerStart ? Buffer.concat([this.headerStart, chunk]) : chunk;
    if (all.length < HEADER_SIZE) {
      this.headerStart = all;
      return NOTHING;
    }
    this.headerStart = null;
    this.header = null;
    if (!all.subarray(0, HEADER_SIZE).equals(expected)) {
      throw new ConnectionError(
        {
          condition: Condition.NotImplemented,
          description: `peer answered protocol header ${all.subarray(0, HEADER_SIZE).toString('hex')} to ${expected.toString('hex')}`,
        },
        'ERR_AMQP_PROTOCOL',
      );
    }
    this.onHeader(expected);
    return all.subarray(HEADER_SIZE);
  }
}
