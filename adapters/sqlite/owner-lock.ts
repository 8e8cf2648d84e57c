import { closeSync, constants, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { NitrogenError } from '../../core/errors.js';

/**
 * One process per store: a second one would recover the journal the first is still writing —
 * compact it and delete its segments — and the first one's later acknowledgements would go to
 * a deleted file. The claim is a file holding the owner's pid, created exclusively; a file
 * whose process no longer runs (after a crash or SIGKILL) is taken over. Returns the release.
 */
export function claimStore(path: string): () => void {
  if (claimedHere.has(path)) throw inUse(path, process.pid);
  for (let attempt = 0; ; attempt++) {
    try {
      const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
      try {
        writeSync(fd, String(process.pid));
      } finally {
        closeSync(fd);
      }
      claimedHere.add(path);
      return () => release(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw err;
      const owner = ownerOf(path);
      // Our own pid in a file we did not write: left by an earlier life with the same pid
      // (a container's server is often pid 1 every time).
      if (owner !== null && owner !== process.pid && running(owner)) throw inUse(path, owner);
      unlinkSync(path);
    }
  }
}

/** Paths this process holds: another store in the same process is refused too. */
const claimedHere = new Set<string>();

function inUse(path: string, owner: number): NitrogenError {
  return new NitrogenError('NITROGEN_ERR_STORE', `the SQLite store is in use by process ${owner} (${path}); if no such server runs, delete that file`);
}

function release(path: string): void {
  claimedHere.delete(path);
  try {
    if (ownerOf(path) === process.pid) unlinkSync(path);
  } catch {
    // Gone already: nothing to release.
  }
}

function ownerOf(path: string): number | null {
  try {
    const pid = Number(readFileSync(path, 'utf8'));
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/** Signal 0 checks that a process exists; EPERM means it does, under another user. */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
