import { parentPort, workerData } from 'node:worker_threads';
import { Compactor } from './compactor.js';
import type { CompactorEvent, CompactorOptions, CompactorRequest } from './compactor-protocol.js';

/*
 * The compactor thread: recovery at start, then compactions whenever enough durable messages
 * wait (or the first of them has waited long enough), purges and feed checkpoints in between.
 * Its transactions block this thread only; the event loop that acknowledges never waits for them.
 */
const options = workerData as CompactorOptions;
const port = parentPort!;
const post = (event: CompactorEvent) => port.postMessage(event);
const RETRY_MS = 1000;

let compactor: Compactor;
try {
  compactor = new Compactor(options);
  post({ op: 'ready', ...compactor.recover(), migrated: compactor.migrated });
} catch (err) {
  post({ op: 'failed', error: (err as Error).message, fatal: true });
  process.exit(1);
}

let timer: NodeJS.Timeout | undefined;
let soon = false;
let failing = false;

/**
 * Compacts everything durable now, one compaction at a time, telling the store after each. On
 * failure the messages are safe in the journal: it tries again later and says why meanwhile,
 * and rethrows when a request asked for it.
 */
function compactAll(rethrow = false): void {
  clearTimeout(timer);
  timer = undefined;
  try {
    while (compactor.compactOnce()) post({ op: 'compacted', seq: compactor.compacted });
    failing = false;
  } catch (err) {
    if (!failing) post({ op: 'failed', error: (err as Error).message, fatal: false });
    failing = true;
    timer = setTimeout(compactAll, RETRY_MS);
    if (rethrow) throw err;
  }
}

/** Runs a compaction when enough bytes wait, or sets the timer for the first frame waiting. */
function schedule(): void {
  const waiting = compactor.waitingBytes;
  if (waiting <= 0 || failing) return;
  if (waiting >= options.compactBytes) {
    if (soon) return;
    soon = true;
    // After the messages already queued: their durable notices join this compaction.
    setImmediate(() => {
      soon = false;
      compactAll();
    });
  } else {
    timer ??= setTimeout(compactAll, options.compactDelayMs);
  }
}

async function handle(request: Exclude<CompactorRequest, { op: 'durable' }>): Promise<number | undefined> {
  switch (request.op) {
    case 'compact':
      compactAll(true);
      return undefined;
    case 'checkpoint':
      compactor.setCheckpoint(request.consumer, request.position);
      return undefined;
    case 'purge':
      // What is in the journal now is purged too: compact it first.
      compactAll();
      return compactor.purge(request.now, request.olderThan, request.upTo, schedule);
    case 'close':
      compactAll();
      clearTimeout(timer);
      compactor.close();
      return undefined;
  }
}

// Requests run one after another (a purge runs in slices; a close waits for it).
let queue = Promise.resolve();

port.on('message', (request: CompactorRequest) => {
  if (request.op === 'durable') {
    compactor.durable(request.frames);
    schedule();
    return;
  }
  queue = queue
    .then(() => handle(request))
    .then(
      (result) => {
        post({ op: 'reply', id: request.id, ok: true, result });
        if (request.op === 'close') port.close();
      },
      (err: Error & { code?: string }) => post({ op: 'reply', id: request.id, ok: false, error: err.message, code: err.code }),
    );
});
