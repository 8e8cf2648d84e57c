interface Waiting<T> {
  item: T;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * One write at a time, and everything pushed while it runs goes together into the next: the
 * writer's own group commit, for stores whose writes must stay in order (a journal, a numbered
 * feed). `push` resolves once the write that took its item succeeded, or rejects with that
 * write's error; a failed write does not stop the next one.
 */
export class BatchingWriter<T> {
  private queue: Waiting<T>[] = [];
  private running?: Promise<void>;

  constructor(private readonly write: (items: T[]) => Promise<void>) {}

  push(item: T): Promise<void> {
    return new Promise((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.running ??= this.drain().finally(() => (this.running = undefined));
    });
  }

  /** Resolves once nothing is queued or being written. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0);
      try {
        await this.write(batch.map((w) => w.item));
      } catch (err) {
        for (const w of batch) w.reject(err);
        continue;
      }
      for (const w of batch) w.resolve();
    }
  }
}
