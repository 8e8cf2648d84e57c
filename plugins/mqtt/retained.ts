import { NitrogenError } from '../../core/errors.js';
import type { SessionState } from '../../core/ports/session-state.js';
import type { MqttLimit } from './options.js';

/** One retained message a PUBLISH would set: its topic and the bytes of its envelope. */
export interface RetainedEntry {
  topic: string;
  bytes: number;
}

/** Counts each principal's retained messages: in memory (`RetainedQuota`), or shared by the instances (`SharedRetainedQuota`). */
export interface RetainedLimiter {
  admit(principal: string, entries: readonly RetainedEntry[]): void | Promise<void>;
  release(principal: string, topic: string): void | Promise<void>;
  take(principal: string): string[] | Promise<string[]>;
}

interface Held {
  bytes: number;
  topics: Map<string, number>;
}

/**
 * Retained messages per principal, in count and bytes. aedes keeps every retained message in
 * memory until the server restarts, so without a cap one device could hold any amount of it
 * (one topic per type). A retained PUBLISH is admitted before it is committed, so a refused one
 * is never stored; a principal's retained topics are all on `devices/{its id}/messages/…`.
 */
export class RetainedQuota implements RetainedLimiter {
  private readonly held = new Map<string, Held>();

  constructor(
    private readonly maxMessages: number,
    private readonly maxBytes: number,
    private readonly limitHit: (limit: MqttLimit) => void,
  ) {}

  /**
   * Records the entries as `principal`'s, replacing what it retained on the same topics, or
   * throws NITROGEN_ERR_QUOTA_EXCEEDED naming the limit: all of a batch or none of it.
   */
  admit(principal: string, entries: readonly RetainedEntry[]): void {
    const held = this.held.get(principal) ?? { bytes: 0, topics: new Map<string, number>() };
    const after = new Map<string, number>();
    for (const { topic, bytes } of entries) after.set(topic, bytes);
    let count = held.topics.size;
    let bytes = held.bytes;
    for (const [topic, size] of after) {
      const before = held.topics.get(topic);
      if (before === undefined) count++;
      bytes += size - (before ?? 0);
    }
    if (count > this.maxMessages) this.refuse('maxRetainedMessages', `'${principal}' may retain at most ${this.maxMessages} messages (mqtt option maxRetainedMessages)`);
    if (bytes > this.maxBytes) this.refuse('maxRetainedBytes', `'${principal}' may retain at most ${this.maxBytes} bytes (mqtt option maxRetainedBytes)`);
    for (const [topic, size] of after) held.topics.set(topic, size);
    held.bytes = bytes;
    this.held.set(principal, held);
  }

  /** An empty retained PUBLISH cleared `topic` [MQTT-3.3.1-10]. */
  release(principal: string, topic: string): void {
    const held = this.held.get(principal);
    const size = held?.topics.get(topic);
    if (!held || size === undefined) return;
    held.topics.delete(topic);
    held.bytes -= size;
    if (held.topics.size === 0) this.held.delete(principal);
  }

  /** Forgets everything `principal` retained and returns the topics, to clear them in the broker. */
  take(principal: string): string[] {
    const topics = [...(this.held.get(principal)?.topics.keys() ?? [])];
    this.held.delete(principal);
    return topics;
  }

  private refuse(limit: MqttLimit, message: string): never {
    refuse(this.limitHit, limit, message);
  }
}

function refuse(limitHit: (limit: MqttLimit) => void, limit: MqttLimit, message: string): never {
  limitHit(limit);
  throw new NitrogenError('NITROGEN_ERR_QUOTA_EXCEEDED', message, { details: { limit } });
}

/**
 * The same caps with a cluster: the count lives in the shared state, checked and updated in one
 * atomic step, so a principal holds at most that much whichever instances it publishes through.
 */
export class SharedRetainedQuota implements RetainedLimiter {
  constructor(
    private readonly state: SessionState,
    private readonly maxMessages: number,
    private readonly maxBytes: number,
    private readonly limitHit: (limit: MqttLimit) => void,
  ) {}

  async admit(principal: string, entries: readonly RetainedEntry[]): Promise<void> {
    const hit = await this.state.admitRetained(principal, entries, { maxMessages: this.maxMessages, maxBytes: this.maxBytes });
    if (hit === 'maxMessages') refuse(this.limitHit, 'maxRetainedMessages', `'${principal}' may retain at most ${this.maxMessages} messages (mqtt option maxRetainedMessages)`);
    if (hit === 'maxBytes') refuse(this.limitHit, 'maxRetainedBytes', `'${principal}' may retain at most ${this.maxBytes} bytes (mqtt option maxRetainedBytes)`);
  }

  release(principal: string, topic: string): Promise<void> {
    return this.state.releaseRetained(principal, topic);
  }

  take(principal: string): Promise<string[]> {
    return this.state.takeRetained(principal);
  }
}
