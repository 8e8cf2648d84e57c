import { decodeCursor, encodeCursor } from '../../core/cursor.js';
import type { Message } from '../../core/message.js';
import type { Page } from '../../core/ports/lifecycle.js';
import type { FeedBatch, FeedPosition, MessageQuery, Store } from '../../core/ports/store.js';
import { compareMessages, matchesQuery } from '../../core/query.js';

/**
 * A Store in memory: for tests and for trying things out. Nothing survives a restart,
 * so `append` is "durable" only for the life of the process.
 */
export class MemoryStore implements Store {
  /** By (from, id), the idempotency key. */
  private readonly byKey = new Map<string, Message>();
  /** Commit order; the feed position is an index into it. Purged messages leave a hole. */
  private readonly log: (Message | undefined)[] = [];
  private readonly checkpoints = new Map<string, FeedPosition>();
  private readonly committedAt = new WeakMap<Message, string>();

  async append(batch: Message[]): Promise<void> {
    const now = new Date().toISOString();
    for (const message of batch) {
      const key = `${message.from}\u0000${message.id}`;
      if (this.byKey.has(key)) continue;
      this.byKey.set(key, message);
      this.log.push(message);
      this.committedAt.set(message, now);
    }
  }

  async get(id: string, from?: string): Promise<Message | null> {
    if (from !== undefined) return this.byKey.get(`${from}\u0000${id}`) ?? null;
    return this.log.find((m) => m?.id === id) ?? null;
  }

  async query(query: MessageQuery): Promise<Page<Message>> {
    const desc = query.order === 'desc';
    const after = query.cursor ? (decodeCursor(query.cursor, ['string', 'string', 'string']) as [string, string, string]) : undefined;
    const matching: Message[] = [];
    for (const message of this.byKey.values()) {
      if (!matchesQuery(message, query)) continue;
      if (after) {
        const c = compareMessages(message, { ts: after[0], id: after[1], from: after[2] } as Message);
        if (desc ? c >= 0 : c <= 0) continue;
      }
      matching.push(message);
    }
    matching.sort(desc ? (a, b) => compareMessages(b, a) : compareMessages);
    const items = matching.slice(0, query.limit);
    const last = items[items.length - 1];
    return { items, next: matching.length > query.limit && last ? encodeCursor([last.ts, last.id, last.from]) : null };
  }

  async purgeExpired(now: Date, olderThan?: Date, keepAfter: (FeedPosition | null)[] = []): Promise<number> {
    const nowIso = now.toISOString();
    const oldIso = olderThan?.toISOString();
    const end = Math.min(this.log.length, ...keepAfter.map((p) => (p === null ? 0 : Number(p))));
    let purged = 0;
    for (let i = 0; i < end; i++) {
      const message = this.log[i];
      if (!message) continue;
      if ((message.expires !== undefined && message.expires < nowIso) || (oldIso !== undefined && message.ts < oldIso)) {
        this.byKey.delete(`${message.from}\u0000${message.id}`);
        this.log[i] = undefined;
        purged++;
      }
    }
    return purged;
  }

  async readFeed(after: FeedPosition | null, limit: number): Promise<FeedBatch> {
    let index = after === null ? 0 : Number(after);
    const messages: Message[] = [];
    while (index < this.log.length && messages.length < limit) {
      const message = this.log[index++];
      if (message) messages.push(message);
    }
    return { messages, position: index === 0 ? after : String(index) };
  }

  async feedLag(after: FeedPosition | null): Promise<{ count: number; oldestTs: string | null }> {
    let count = 0;
    let oldestTs: string | null = null;
    for (let i = after === null ? 0 : Number(after); i < this.log.length; i++) {
      const message = this.log[i];
      if (!message) continue;
      count++;
      oldestTs ??= this.committedAt.get(message) ?? null;
    }
    return { count, oldestTs };
  }

  async getCheckpoint(consumer: string): Promise<FeedPosition | null> {
    return this.checkpoints.get(consumer) ?? null;
  }

  async setCheckpoint(consumer: string, position: FeedPosition): Promise<void> {
    this.checkpoints.set(consumer, position);
  }
}
