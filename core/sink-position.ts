import type { Logger } from './logger.js';
import type { FeedPosition } from './ports/store.js';

/** A batch read from the feed and not yet settled: it ends at `position`. */
export interface InFlight {
  readonly position: FeedPosition | null;
  done: boolean;
}

/**
 * A sink's place in the feed, kept in this one place (a cluster lease wraps it): where the next
 * read starts, which batches are in flight, how far everything was accepted, and the durable
 * checkpoint. Batches are accepted in any order, but the accepted position only moves over a
 * batch once every batch read before it was accepted too, so a restart from the checkpoint never
 * skips a message. The checkpoint is written at most once per `checkpointMs` (a SQLite write, a
 * network round trip: never per batch), one write at a time; a crash re-sends at most what was
 * accepted since the last write (at-least-once).
 */
/** Where a sink's durable checkpoint is kept: the store, or on a cluster the partition's fenced lease. */
export interface Checkpoints {
  get(): Promise<FeedPosition | null>;
  set(position: FeedPosition): Promise<void>;
}

export class SinkPosition {
  /** Where the next read starts. */
  private readAt: FeedPosition | null = null;
  /** Everything up to here was accepted. */
  private accepted: FeedPosition | null = null;
  /** The checkpoint last written durably; retention keeps what follows it. */
  private written: FeedPosition | null = null;
  private readonly inFlight: InFlight[] = [];
  private writing?: Promise<void>;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly checkpoints: Checkpoints,
    /** Names the checkpoint in logs. */
    private readonly consumer: string,
    private readonly checkpointMs: number,
    private readonly logger: Logger,
  ) {}

  /** Reads the checkpoint: delivery resumes after it. */
  async load(): Promise<void> {
    this.readAt = this.accepted = this.written = await this.checkpoints.get();
  }

  /** Where the next read starts. */
  get next(): FeedPosition | null {
    return this.readAt;
  }

  /** The durable checkpoint. */
  get checkpoint(): FeedPosition | null {
    return this.written;
  }

  /** Batches read and not yet accepted. */
  get pending(): number {
    return this.inFlight.length;
  }

  /** A batch ending at `position` was read; the next read starts after it. Settle it once accepted. */
  open(position: FeedPosition | null): InFlight {
    const batch: InFlight = { position, done: false };
    this.readAt = position;
    this.inFlight.push(batch);
    return batch;
  }

  /** `batch` was accepted (or dead-lettered) in full; the accepted position moves over every settled batch at the head. */
  settle(batch: InFlight): void {
    batch.done = true;
    let moved = false;
    while (this.inFlight.length > 0 && this.inFlight[0]!.done) {
      this.accepted = this.inFlight.shift()!.position;
      moved = true;
    }
    if (moved) this.timer ??= setTimeout(() => void this.write(), this.checkpointMs);
  }

  /** Writes the accepted position now (on stop) and waits for every write. */
  async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.writing;
    if (this.accepted !== this.written) await this.write();
  }

  private write(): Promise<void> {
    this.timer = undefined;
    const position = this.accepted;
    if (position === null || position === this.written) return Promise.resolve();
    if (this.writing) {
      // One write at a time: this position goes in the next one.
      this.timer = setTimeout(() => void this.write(), this.checkpointMs);
      return this.writing;
    }
    this.writing = this.checkpoints.set(position).then(
      () => {
        this.written = position;
        this.writing = undefined;
      },
      (err: unknown) => {
        this.writing = undefined;
        // The next write carries a later position; until then a restart re-sends (at-least-once).
        this.logger.warn({ err, consumer: this.consumer }, 'could not write the sink checkpoint');
        this.timer ??= setTimeout(() => void this.write(), this.checkpointMs);
      },
    );
    return this.writing;
  }
}
