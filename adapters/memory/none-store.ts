import { NitrogenError } from '../../core/errors.js';
import type { Message } from '../../core/message.js';
import type { Page } from '../../core/ports/lifecycle.js';
import type { FeedBatch, FeedPosition, Store } from '../../core/ports/store.js';

function noStore(): NitrogenError {
  return new NitrogenError('NITROGEN_ERR_UNAVAILABLE', 'this server keeps no messages (store "none", for ack: "sink" pass-through)');
}

/**
 * The store of a pure pass-through deployment (`ack: "sink"`): appends are accepted and
 * dropped, because the sinks acknowledged them; reads answer NITROGEN_ERR_UNAVAILABLE.
 */
export class NoneStore implements Store {
  async append(_batch: Message[]): Promise<void> {}
  async get(): Promise<Message | null> {
    throw noStore();
  }
  async query(): Promise<Page<Message>> {
    throw noStore();
  }
  async purgeExpired(): Promise<number> {
    return 0;
  }
  async readFeed(after: FeedPosition | null): Promise<FeedBatch> {
    return { messages: [], position: after };
  }
  async getCheckpoint(): Promise<FeedPosition | null> {
    return null;
  }
  async setCheckpoint(): Promise<void> {}
}
