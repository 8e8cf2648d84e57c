import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { join } from 'node:path';
import { threadId } from 'node:worker_threads';

/**
 * Preloaded into a Nitrogen server (`node --import <this file's URL>?out=DIR`, what
 * `--allocations DIR` of the ingest bench does): samples every allocation of each thread, kept or
 * collected, from start to exit, and writes `allocations.<pid>.<thread>.heapprofile` into DIR.
 * Unlike CPU time, bytes allocated per message do not depend on what else the machine is doing,
 * and they are what the young-generation collector's cost follows. `--heap-prof` is no
 * substitute: it reports only what is still alive at exit.
 *
 * Any other process is left alone, so the same file can sample the server of another checkout's
 * bench through NODE_OPTIONS (bench/RESULTS.md, "Hardening: the cost of the limits").
 */
const out = new URL(import.meta.url).searchParams.get('out');
if (out && /bin\/nitrogen\.js$/.test(process.argv[1] ?? '')) {
  const session = new Session();
  session.connect();
  // One sample per 16 KiB allocated on average: a few per message at full load, little overhead.
  session.post('HeapProfiler.startSampling', { samplingInterval: 16 * 1024, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
  // An in-process inspector session answers synchronously, so the profile is written before exit.
  process.on('exit', () => {
    session.post('HeapProfiler.stopSampling', (err, result) => {
      if (!err) writeFileSync(join(out, `allocations.${process.pid}.${threadId}.heapprofile`), JSON.stringify(result.profile));
    });
  });
}
