import { connect } from '@nitrogen/client';

/**
 * A device process for the client's durability tests, driven by one JSON argument: it connects
 * with a queue file without waiting for the server, reports how many messages it found in the
 * queue, sends `count` telemetry messages numbered from `first`, `burst` at a time, (printing `queued N` once each
 * is in the queue file), then, when told to `drain`, waits until the server acknowledged
 * everything and prints `drained`. The tests kill it with SIGKILL wherever they like.
 */
const { url, id, secret, file, first, count, drain, fsync, burst } = JSON.parse(process.argv[2]!) as {
  url: string;
  id: string;
  secret: string;
  file: string;
  first: number;
  count: number;
  drain: boolean;
  fsync?: 'always' | 'never';
  /** Messages sent in one turn before waiting for the queue file (default 1). */
  burst?: number;
};

const session = await connect({ url, id, secret, queue: { file, fsync: fsync ?? 'always' }, waitForServer: false, reconnect: { initialDelayMs: 50, maxDelayMs: 200 } });
process.stdout.write(`restored ${session.queued}\n`);
for (let n = first; n < first + count; n += burst ?? 1) {
  const sent = [];
  for (let i = n; i < Math.min(n + (burst ?? 1), first + count); i++) sent.push(session.send({ type: 'telemetry', body: { n: i } }));
  // Records of one turn are written together: when the last is kept, all are.
  await sent.at(-1)!.queued();
  process.stdout.write(sent.map((_, i) => `queued ${n + i}\n`).join(''));
}
process.stdout.write('all-queued\n');
if (drain) {
  await session.drained();
  process.stdout.write('drained\n');
  await session.close();
}
