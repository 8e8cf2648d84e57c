import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { NitrogenError } from '../../core/errors.js';
import type { Admission, QueueLimits, QueuedDelivery, RetainedLimits, SessionState, Subscription } from '../../core/ports/session-state.js';
import { SCRIPTS, type ScriptName } from './scripts.js';

const SHAS = Object.fromEntries(Object.entries(SCRIPTS).map(([name, lua]) => [name, createHash('sha1').update(lua).digest('hex')])) as Record<ScriptName, string>;

/**
 * Persistent sessions in Redis (core/ports/session-state.ts). Keys, under the bus prefix:
 * `client:{id}` (principal, persistent, connection), `sessions:{principal}` (its persistent
 * client ids by last connection), `subs:{id}` and the set `subscribers`, a queue per client
 * (`queue:{id}` the order, `queued:{id}` the deliveries by key, `queue-ids:{id}` and
 * `queue-sent:{id}` the packet identifiers they were sent with, `queue-bytes:{id}`), `retained`
 * (topic → payload) and `retained-by:{principal}` (topic → bytes). Every check against a cap
 * runs in a Lua script (scripts.ts), atomically.
 */
export class RedisSessionState implements SessionState {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  /** Loads the scripts, so the first EVALSHA finds them. */
  async load(): Promise<void> {
    await Promise.all(Object.values(SCRIPTS).map((lua) => this.redis.script('LOAD', lua)));
  }

  /** After a reconnection: a restarted Redis has forgotten them. Sent before anything else on the connection. */
  reloadScripts(): void {
    this.load().catch(() => {});
  }

  private async run(name: ScriptName, args: Array<string | number | Buffer>): Promise<unknown> {
    try {
      try {
        return await this.redis.evalsha(SHAS[name], 0, this.prefix, ...args);
      } catch (err) {
        if (!String((err as Error).message).startsWith('NOSCRIPT')) throw err;
        return await this.redis.eval(SCRIPTS[name], 0, this.prefix, ...args);
      }
    } catch (err) {
      throw unavailable(err);
    }
  }

  private async call<T>(work: Promise<T>): Promise<T> {
    try {
      return await work;
    } catch (err) {
      throw unavailable(err);
    }
  }

  private key(kind: string, id: string): string {
    return `${this.prefix}${kind}:${id}`;
  }

  async admit(clientId: string, principal: string, persistent: boolean, connection: string, maxSessions: number): Promise<Admission> {
    const [outcome, ...ended] = (await this.run('admit', [clientId, principal, persistent ? '1' : '0', connection, maxSessions, Date.now()])) as string[];
    if (outcome === 'taken' || outcome === 'full') return { admitted: false, reason: outcome };
    return { admitted: true, ended };
  }

  async closed(clientId: string, connection: string): Promise<void> {
    await this.run('closed', [clientId, connection]);
  }

  async endSession(clientId: string): Promise<void> {
    await this.run('endSession', [clientId]);
  }

  async endSessionsOf(principal: string): Promise<string[]> {
    return (await this.run('endSessionsOf', [principal])) as string[];
  }

  async addSubscriptions(clientId: string, subscriptions: readonly Subscription[]): Promise<void> {
    if (subscriptions.length === 0) return;
    const fields = subscriptions.flatMap((s) => [s.topic, String(s.qos)]);
    await this.call(
      this.redis
        .multi()
        .hset(this.key('subs', clientId), ...fields)
        .sadd(`${this.prefix}subscribers`, clientId)
        .exec(),
    );
  }

  async removeSubscriptions(clientId: string, topics: readonly string[]): Promise<void> {
    if (topics.length === 0) return;
    const key = this.key('subs', clientId);
    const [, [, left] = []] =
      (await this.call(
        this.redis
          .multi()
          .hdel(key, ...topics)
          .hlen(key)
          .exec(),
      )) ?? [];
    if (left === 0) await this.call(this.redis.srem(`${this.prefix}subscribers`, clientId));
  }

  async subscriptions(clientId: string): Promise<Subscription[]> {
    const hash = await this.call(this.redis.hgetall(this.key('subs', clientId)));
    return Object.entries(hash).map(([topic, qos]) => ({ topic, qos: Number(qos) }));
  }

  async allSubscriptions(): Promise<Array<Subscription & { clientId: string }>> {
    const ids = await this.call(this.redis.smembers(`${this.prefix}subscribers`));
    const all: Array<Subscription & { clientId: string }> = [];
    // In pages, so a large deployment does not hold one huge reply.
    for (let i = 0; i < ids.length; i += 500) {
      const page = ids.slice(i, i + 500);
      const pipeline = this.redis.pipeline();
      for (const id of page) pipeline.hgetall(this.key('subs', id));
      const replies = (await this.call(pipeline.exec())) ?? [];
      replies.forEach(([, hash], j) => {
        for (const [topic, qos] of Object.entries((hash ?? {}) as Record<string, string>)) all.push({ clientId: page[j]!, topic, qos: Number(qos) });
      });
    }
    return all;
  }

  async enqueue(clientIds: readonly string[], delivery: QueuedDelivery, limits: QueueLimits): Promise<Array<{ clientId: string; limit: 'maxMessages' | 'maxBytes' }>> {
    if (clientIds.length === 0) return [];
    const full = (await this.run('enqueue', [delivery.key, encodeDelivery(delivery), delivery.payload.length, limits.maxMessages, limits.maxBytes, ...clientIds])) as string[];
    const out: Array<{ clientId: string; limit: 'maxMessages' | 'maxBytes' }> = [];
    for (let i = 0; i < full.length; i += 2) out.push({ clientId: full[i]!, limit: full[i + 1] as 'maxMessages' | 'maxBytes' });
    return out;
  }

  async sent(clientId: string, key: string, messageId: number): Promise<boolean> {
    return (await this.run('sent', [clientId, key, messageId])) === 1;
  }

  async acknowledge(clientId: string, by: { messageId: number } | { key: string }): Promise<QueuedDelivery | undefined> {
    const reply = (await this.run('acknowledge', [clientId, 'key' in by ? 'key' : 'id', 'key' in by ? by.key : by.messageId])) as [string, string] | null;
    if (!reply) return undefined;
    return decodeDelivery(reply[0], reply[1]);
  }

  async dropQueue(clientId: string): Promise<void> {
    await this.call(this.redis.del(...['queue', 'queued', 'queue-ids', 'queue-sent', 'queue-bytes'].map((kind) => this.key(kind, clientId))));
  }

  async queued(clientId: string): Promise<QueuedDelivery[]> {
    const [keys, sent] = await Promise.all([this.call(this.redis.lrange(this.key('queue', clientId), 0, -1)), this.call(this.redis.hgetall(this.key('queue-sent', clientId)))]);
    if (keys.length === 0) return [];
    const encoded = await this.call(this.redis.hmget(this.key('queued', clientId), ...keys));
    const out: QueuedDelivery[] = [];
    encoded.forEach((text, i) => {
      if (text) out.push(decodeDelivery(text, sent[keys[i]!]));
    });
    return out;
  }

  async retain(topic: string, payload: Buffer): Promise<void> {
    const key = `${this.prefix}retained`;
    await this.call(payload.length === 0 ? this.redis.hdel(key, topic) : this.redis.hset(key, topic, payload));
  }

  async retainedUnder(prefix: string): Promise<Array<{ topic: string; payload: Buffer }>> {
    const out: Array<{ topic: string; payload: Buffer }> = [];
    // Glob characters in a topic are escaped: a topic is matched as the text it is.
    const match = `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
    let cursor = '0';
    do {
      const [next, entries] = await this.call(this.redis.hscanBuffer(`${this.prefix}retained`, cursor, 'MATCH', match, 'COUNT', 500));
      cursor = next.toString();
      for (let i = 0; i < entries.length; i += 2) out.push({ topic: entries[i]!.toString(), payload: entries[i + 1]! });
    } while (cursor !== '0');
    return out;
  }

  async admitRetained(principal: string, entries: ReadonlyArray<{ topic: string; bytes: number }>, limits: RetainedLimits): Promise<'maxMessages' | 'maxBytes' | null> {
    const hit = (await this.run('admitRetained', [principal, limits.maxMessages, limits.maxBytes, ...entries.flatMap((e) => [e.topic, e.bytes])])) as string;
    return hit === '' ? null : (hit as 'maxMessages' | 'maxBytes');
  }

  async releaseRetained(principal: string, topic: string): Promise<void> {
    await this.call(this.redis.hdel(this.key('retained-by', principal), topic));
  }

  async takeRetained(principal: string): Promise<string[]> {
    return (await this.run('takeRetained', [principal])) as string[];
  }
}

/** `{bytes}|{json}`: the scripts read the payload size from the front without decoding JSON. */
function encodeDelivery(delivery: QueuedDelivery): string {
  return `${delivery.payload.length}|${JSON.stringify({ k: delivery.key, t: delivery.topic, q: delivery.qos, p: delivery.payload.toString('base64') })}`;
}

function decodeDelivery(text: string, messageId: string | undefined): QueuedDelivery {
  const parsed = JSON.parse(text.slice(text.indexOf('|') + 1)) as { k: string; t: string; q: number; p: string };
  const delivery: QueuedDelivery = { key: parsed.k, topic: parsed.t, qos: parsed.q, payload: Buffer.from(parsed.p, 'base64') };
  if (messageId) delivery.messageId = Number(messageId);
  return delivery;
}

function unavailable(err: unknown): NitrogenError {
  return new NitrogenError('NITROGEN_ERR_UNAVAILABLE', `shared session state unreachable: ${(err as Error).message}`, { cause: err });
}
