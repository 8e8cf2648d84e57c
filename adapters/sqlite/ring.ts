/**
 * Shared memory for the journal's frames between their append and their compaction: the tail's
 * reads, the journal's writes and the compactor thread all use the same bytes, so a message is
 * encoded once and never copied between threads. Frames are placed one after another and freed
 * in the same order (compaction is in sequence order), which makes it a ring: a frame that
 * would not fit before the end of the buffer starts at its beginning instead. Positions are
 * virtual (they only grow); `offset()` maps one to the buffer.
 *
 * Its size is the store's bound on memory: when it is full, appends wait for compaction.
 */
export class FrameRing {
  readonly shared: SharedArrayBuffer;
  readonly bytes: Buffer;
  /** Virtual positions: in use from `head` (oldest frame not yet freed) to `next` (where the next frame goes). */
  private head = 0;
  private next = 0;
  private waiters: Array<() => void> = [];

  constructor(readonly capacity: number) {
    this.shared = new SharedArrayBuffer(capacity);
    this.bytes = Buffer.from(this.shared);
  }

  /** The largest frame the ring takes: a quarter, so that one never waits for the whole ring to drain. */
  get maxFrame(): number {
    return Math.floor(this.capacity / 4);
  }

  offset(position: number): number {
    return position % this.capacity;
  }

  /**
   * Room for a frame of at most `size` bytes, at the returned position, or -1 when the ring is
   * too full now. Nothing is taken until `commit`.
   */
  reserve(size: number): number {
    if (size > this.maxFrame) throw new RangeError(`a frame of ${size} bytes exceeds the journal ring's largest (${this.maxFrame})`);
    const at = this.offset(this.next);
    const start = at + size > this.capacity ? this.next + this.capacity - at : this.next;
    return start + size - this.head <= this.capacity ? start : -1;
  }

  /** The bytes reserved at `position`. */
  view(position: number, length: number): Buffer {
    return this.bytes.subarray(this.offset(position), this.offset(position) + length);
  }

  /** Takes `length` bytes at `position` (from `reserve`): in use until freed. */
  commit(position: number, length: number): void {
    this.next = position + length;
  }

  /** Frees everything before `position` (the end of the last frame compacted), and wakes appends waiting for room. */
  free(position: number): void {
    this.head = Math.max(this.head, position);
    for (const wake of this.waiters.splice(0)) wake();
  }

  /** Resolves at the next `free`. */
  room(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }
}
