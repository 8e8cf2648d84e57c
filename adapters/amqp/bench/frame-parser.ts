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

function rate(label: string, input: Buffer[], frames: number, make: () => (chunk: Buffer) => void): number {
  const run = (): void => { const push = make(); for (const c of input) push(c); };
  for (let i = 0; i < 3; i++) run(); // warm-up
  const start = process.hrtime.bigint();
  let rounds = 0;
  while (Number(process.hrtime.bigint() - start) < 1e9) { run(); rounds++; }
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  const perSec = (rounds * frames) / secs;
  console.log(`  ${label}: ${Math.round(perSec).toLocaleString('en-US')} frames/s`);
  return perSec;
}

const cases: Array<[string, number, number, number]> = [
  ['150-byte frames in 64 KiB chunks (a receiver under load)', 150, 20_000, 65536],
  ['150-byte frames in 1,460-byte chunks (one TCP segment each)', 150, 20_000, 1460],
  ['256 KiB frames in 64 KiB chunks (large messages)', 262144, 64, 65536],
];

console.log('# Frame parser: ours vs bl');
for (const [label, size, count, chunkSize] of cases) {
  const input = chunks(stream(count, size), chunkSize);
  console.log(label);
  const ours = rate('ours (FrameParser)', input, count, () => {
    const p = new FrameParser(() => undefined);
    p.maxFrameSize = 1 << 20;
    return (c) => p.push(c);
  });
  const bl = rate('bl (BufferList)', input, count, () => blParser(() => undefined));
  console.log(`  ours/bl: ${(ours / bl).toFixed(2)}x`);
}
