// `node dist/bench/frame-parser.js`: our FrameParser against the same parser
// written on `bl` (a list of buffers with readUInt32BE, slice and consume),
// over byte streams cut into socket-sized chunks. It is why the client does
// not use bl: see the package README, "Frame parsing".
import { BufferList } from 'bl';
import { FrameParser } from '../src/frames.js';

/** A stream of `count` frames of `size` bytes each (valid 8-byte headers, zero bodies). */
function stream(count: number, size: number): Buffer {
  const out = Buffer.alloc(count * size);
  for (let i = 0; i < count; i++) {
    out.writeUInt32BE(size, i * size);
    out[i * size + 4] = 2;
  }
  return out;
}

function chunks(bytes: Buffer, chunkSize: number): Buffer[] {
  const out: Buffer[] = [];
  for (let off = 0; off < bytes.length; off += chunkSize) out.push(bytes.subarray(off, off + chunkSize));
  return out;
}

/** The usual bl framing loop: append, then take whole frames off the front. */
function blParser(onFrame: (frame: Buffer) => void): (chunk: Buffer) => void {
  const list = new BufferList();
  return (chunk) => {
    list.append(chunk);
    while (list.length >= 8) {
      const size = list.readUInt32BE(0);
      if (list.length < size) break;
      onFrame(list.slice(0, size));
      list.consume(size);
    }
  };
}

/** Frames per second of one parser over the chunks, for about `ms` after a warm-up. */
function rate(input: Buffer[], frames: number, make: () => (chunk: Buffer) => void, ms = 400): number {
  const run = (): void => {
    const push = make();
    for (const c of input) push(c);
  };
  for (let i = 0; i < 3; i++) run();
  const start = process.hrtime.bigint();
  let rounds = 0;
  while (Number(process.hrtime.bigint() - start) < ms * 1e6) {
    run();
    rounds++;
  }
  return (rounds * frames) / (Number(process.hrtime.bigint() - start) / 1e9);
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

const cases: Array<[string, number, number, number]> = [
  ['150-byte frames in 64 KiB chunks (a receiver under load)', 150, 20_000, 65536],
  ['150-byte frames in 1,460-byte chunks (one TCP segment each)', 150, 20_000, 1460],
  ['256 KiB frames in 64 KiB chunks (large messages)', 262144, 64, 65536],
];

// The machine is shared: runs alternate between the two parsers and the medians are compared.
console.log('# Frame parser: ours vs bl (frames/s, median of 7 alternating runs of 0.4 s)');
for (const [label, size, count, chunkSize] of cases) {
  const input = chunks(stream(count, size), chunkSize);
  const ours: number[] = [];
  const bl: number[] = [];
  for (let i = 0; i < 7; i++) {
    ours.push(
      rate(input, count, () => {
        const p = new FrameParser(() => undefined);
        p.maxFrameSize = 1 << 20;
        return (c) => p.push(c);
      }),
    );
    bl.push(rate(input, count, () => blParser(() => undefined)));
  }
  console.log(`${label}: ours ${fmt(median(ours))} | bl ${fmt(median(bl))} | ours/bl ${(median(ours) / median(bl)).toFixed(2)}x`);
}
