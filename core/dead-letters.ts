import { existsSync, readFileSync } from 'node:fs';
import { mkdir, open } from 'node:fs/promises';
import { join } from 'node:path';
import type { Message } from './message.js';

export interface DeadLetter {
  at: string;
  sink: string;
  reason: string;
  message: Message;
}

/**
 * Messages a sink refused for good, kept with the reason in `<dataDir>/dead-letters/<sink>.ndjson`
 * (one JSON object per line, fsynced), so they can be inspected and replayed instead of
 * being retried forever or dropped. The write and its fsync run off the event loop (libuv's
 * thread pool), so a slow disk delays that sink only, not every connection of the server.
 */
export class DeadLetters {
  private readonly dir: string;
  /** The write in progress per file: lines go out one after the other, never interleaved. */
  private readonly writing = new Map<string, Promise<void>>();

  constructor(dataDir: string) {
    this.dir = join(dataDir, 'dead-letters');
  }

  private file(sink: string): string {
    return join(this.dir, `${sink}.ndjson`);
  }

  /** Resolves once the dead letter is on disk (fsynced): only then may the sink's checkpoint pass it. */
  record(sink: string, message: Message, reason: string): Promise<void> {
    const line = JSON.stringify({ at: new Date().toISOString(), sink, reason, message } satisfies DeadLetter) + '\n';
    const file = this.file(sink);
    const write = (this.writing.get(file) ?? Promise.resolve()).then(() => this.append(file, line));
    // The next line waits for this one, written or failed.
    this.writing.set(
      file,
      write.catch(() => undefined),
    );
    return write;
  }

  private async append(file: string, line: string): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const handle = await open(file, 'a', 0o600);
    try {
      await handle.write(line);
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  /** The most recent `limit` dead letters of a sink, oldest first. */
  list(sink: string, limit = 100): DeadLetter[] {
    const file = this.file(sink);
    if (!existsSync(file)) return [];
    const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
    return lines.slice(-limit).map((line) => JSON.parse(line) as DeadLetter);
  }
}
