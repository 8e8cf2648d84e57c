import { closeSync, openSync, readSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { uptime } from 'node:os';
import { ClientError } from '../errors.js';
import { ioError } from './queue-file.js';

/** Queue files this process has open: a lock naming our own pid is stale unless listed here. */
const OPEN_HERE = new Set<string>();

/**
 * One process per queue file: `<file>.lock` holds the owner's pid, created exclusively. The lock
 * of a process that is gone — dead, or of an earlier boot, whatever runs under its pid now — is
 * taken over; that of a live one makes opening fail with NITROGEN_CLIENT_QUEUE_LOCKED.
 */
export function lockQueue(path: string): () => void {
  const lockPath = `${path}.lock`;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lockPath, 'wx', 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      OPEN_HERE.add(path);
      return () => {
        OPEN_HERE.delete(path);
        try {
          unlinkSync(lockPath);
        } catch {
          // already gone
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError(lockPath, 'cannot create the lock', err);
    }
    const owner = Number(readLockOwner(lockPath));
    if (owner > 0 && (owner === process.pid ? OPEN_HERE.has(path) : alive(owner) && !fromBeforeBoot(lockPath))) {
      throw new ClientError('NITROGEN_CLIENT_QUEUE_LOCKED', `queue file ${path} is in use by process ${owner}`, { pid: owner, path });
    }
    try {
      unlinkSync(lockPath);
    } catch {
      // another process took it over first: the next attempt says so
    }
  }
  throw new ClientError('NITROGEN_CLIENT_QUEUE_LOCKED', `queue file ${path}: the lock ${lockPath} keeps reappearing`, { path });
}

/** A lock written before the machine booted names a process of an earlier boot, whatever runs under that pid now. */
function fromBeforeBoot(path: string): boolean {
  try {
    return statSync(path).mtimeMs < Date.now() - uptime() * 1000;
  } catch {
    return false;
  }
}

function readLockOwner(path: string): string {
  try {
    const buf = Buffer.alloc(32);
    const fd = openSync(path, 'r');
    const n = readSync(fd, buf, 0, 32, 0);
    closeSync(fd);
    return buf.toString('latin1', 0, n);
  } catch {
    return '';
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
