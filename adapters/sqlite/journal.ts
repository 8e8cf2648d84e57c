import { constants, mkdirSync } from 'node:fs';
import { open, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { BatchingWriter } from '../../core/batching-writer.js';

/** Journal segments are named by the first sequence number they hold, so they sort by name. */
export function segmentName(firstSeq: number): string {
  return `${String(firstSeq).padStart(16, '0')}.log`;
}

export function segmentSeq(name: string): number | null {
  const match = /^(\d{16})\.log$/.exec(name);
  return match ? Number(match[1]) : null;
}

/** One append's frame and the sequence numbers in it. */
export interface JournalFrame {
  frame: Buffer;
  firstSeq: number;
  lastSeq: number;
}

/**
 * The acknowledgement path: an append-only log of frames, each on disk before the appends in
 * it resolve (the file is opened O_DSYNC: a write returns once its data is durable, as with
 * fdatasync). Frames queued while a write is in flight go out together in the next `writev` —
 * a second group commit under GroupCommit's, which also gathers appends that callers make
 * concurrently. Writes run on libuv's thread pool, so the event loop never waits for the disk.
 *
 * Frames reach the disk in the order they were queued (sequence order), one write at a time:
 * when a frame is durable, every frame before it is too. After a failed write nothing is
 * trusted any more (a failed sync may have dropped pages): the journal refuses every later
 * append, and a restart recovers what reached the disk.
 */
export class Journal<F extends JournalFrame = JournalFrame> {
  private file?: FileHandle;
  private size = 0;
  /** Segments on disk, oldest first; the last one is written to. */
  private readonly segments: Array<{ firstSeq: number; lastSeq: number }> = [];
  private readonly writer = new BatchingWriter<F>((frames) => this.write(frames));
  private failure?: Error;
  /** Every frame up to this sequence number is durable. */
  durableSeq: number;

  constructor(
    private readonly dir: string,
    private readonly segmentBytes: number,
    startSeq: number,
    /** Called after each write with the frames it made durable, in order. */
    private readonly onDurable: (frames: F[]) => void,
  ) {
    this.durableSeq = startSeq - 1;
  }

  /** Creates the journal directory if needed and the first segment, for `startSeq` onwards. */
  async open(): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    await syncDirectory(dirname(this.dir));
    await this.rotate(this.durableSeq + 1);
  }

  /** Queues a frame; resolves when it is durable. */
  append(frame: F): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    return this.writer.push(frame);
  }

  /** Waits for queued frames, then closes the segment. */
  async close(): Promise<void> {
    await this.writer.idle();
    await this.file?.close();
    this.file = undefined;
  }

  private async write(frames: F[]): Promise<void> {
    try {
      if (this.failure) throw this.failure;
      let bytes = 0;
      for (const f of frames) bytes += f.frame.length;
      if (this.size > 0 && this.size + bytes > this.segmentBytes) await this.rotate(frames[0]!.firstSeq);
      // O_DSYNC: the write returns once the data is on disk, like write + fdatasync in one
      // trip through the thread pool, which is one turn of a busy event loop less per commit.
      const { bytesWritten } = await this.file!.writev(frames.map((f) => f.frame));
      if (bytesWritten !== bytes) throw new Error(`short journal write: ${bytesWritten} of ${bytes} bytes`);
      this.size += bytes;
      this.durableSeq = frames[frames.length - 1]!.lastSeq;
      this.segments[this.segments.length - 1]!.lastSeq = this.durableSeq;
    } catch (err) {
      throw (this.failure ??= err instanceof Error ? err : new Error(String(err)));
    }
    this.onDurable(frames);
  }

  /** Deletes the segments (but the one written to) whose every message is compacted. */
  release(compacted: number): void {
    while (this.segments.length > 1 && this.segments[0]!.lastSeq <= compacted) {
      const { firstSeq } = this.segments.shift()!;
      // A segment left behind is harmless: recovery skips what the watermark covers.
      unlink(join(this.dir, segmentName(firstSeq))).catch(() => {});
    }
  }

  /** Starts a new segment; its directory entry is synced before any frame in it counts as durable. */
  private async rotate(firstSeq: number): Promise<void> {
    await this.file?.close();
    this.file = await open(join(this.dir, segmentName(firstSeq)), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_DSYNC);
    this.size = 0;
    this.segments.push({ firstSeq, lastSeq: firstSeq - 1 });
    await syncDirectory(this.dir);
  }
}

/** Makes the entries of a directory (a new file in it) durable. */
async function syncDirectory(path: string): Promise<void> {
  const dir = await open(path, 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
