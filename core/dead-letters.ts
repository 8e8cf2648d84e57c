import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
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
 * being retried forever or dropped.
 */
export class DeadLetters {
  private readonly dir: string;

  constructor(dataDir: string) {
    this.dir = join(dataDir, 'dead-letters');
  }

  private file(sink: string): string {
    return join(this.dir, `${sink}.ndjson`);
  }

  record(sink: string, message: Message, reason: string): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const line = JSON.stringify({ at: new Date().toISOString(), sink, reason, message } satisfies DeadLetter) + '\n';
    const fd = openSync(this.file(sink), 'a', 0o600);
    try {
      writeSync(fd, line);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
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
