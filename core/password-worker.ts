import { parentPort } from 'node:worker_threads';
import { parseDigest, scryptDigestSync, scryptMatchesSync } from './secrets.js';

/*
 * A password-hashing thread (core/password-hasher.ts). scrypt runs here synchronously, so it
 * occupies this thread alone: neither the event loop nor libuv's thread pool, where the store's
 * O_DSYNC journal writes wait their turn, ever runs it.
 */
export type HashRequest = { op: 'hash'; password: string } | { op: 'verify'; password: string; digest: string };
export type HashJob = HashRequest & { id: number };
export type HashReply = { id: number; result: string | boolean } | { id: number; error: string };

const port = parentPort!;

port.on('message', (job: HashJob) => {
  try {
    if (job.op === 'hash') {
      port.postMessage({ id: job.id, result: scryptDigestSync(job.password) } satisfies HashReply);
      return;
    }
    const digest = parseDigest(job.digest);
    port.postMessage({ id: job.id, result: digest.kind === 'scrypt' && scryptMatchesSync(job.password, digest) } satisfies HashReply);
  } catch (err) {
    // The message names what failed (bad parameters, memory), never the password.
    port.postMessage({ id: job.id, error: (err as Error).message } satisfies HashReply);
  }
});
