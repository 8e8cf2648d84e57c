import type { Redis } from 'ioredis';
import { NitrogenError } from '../../core/errors.js';
import type { Lease, LeaseStore } from '../../core/ports/leases.js';
import type { FeedPosition } from '../../core/ports/store.js';

/**
 * Leases and fenced checkpoints in Redis (core/ports/leases.ts). A lease is one key holding
 * `<epoch> <owner>` with the ttl as its expiry; the epoch comes from a counter that is never
 * reset, so a unit's epochs only grow. Each check-then-write is one Lua script, atomic in Redis:
 * the checkpoint moves only if the lease key still holds the writer's epoch and owner.
 * Members are a sorted set scored by the Redis server's clock, so the instances' clocks need not agree.
 */
const ACQUIRE = `
local held = redis.call('GET', KEYS[1])
if held then
  local epoch, owner = string.match(held, '^(%d+) (.*)$')
  if owner == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return tonumber(epoch)
  end
  return false
end
local epoch = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], epoch .. ' ' .. ARGV[1], 'PX', ARGV[2])
return epoch`;

/** ARGV: '<epoch> <owner>', ttl. */
const RENEW = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`;

const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

/** KEYS: lease, checkpoint. ARGV: '<epoch> <owner>', position. */
const CHECKPOINT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[2], ARGV[2])
  return 1
end
return 0`;

/** KEYS: members. ARGV: member, ttl. Returns the live members. */
const HEARTBEAT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return redis.call('ZRANGE', KEYS[1], 0, -1)`;

export class RedisLeases implements LeaseStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private leaseKey(key: string): string {
    return `${this.prefix}lease:${key}`;
  }

  private async call<T>(work: Promise<T>): Promise<T> {
    try {
      return await work;
    } catch (err) {
      throw new NitrogenError('NITROGEN_ERR_UNAVAILABLE', `sink leases: Redis unreachable: ${(err as Error).message}`, { cause: err });
    }
  }

  async heartbeat(group: string, member: string, ttlMs: number): Promise<string[]> {
    const members = (await this.call(this.redis.eval(HEARTBEAT, 1, `${this.prefix}members:${group}`, member, ttlMs))) as string[];
    return [...members].sort();
  }

  async leave(group: string, member: string): Promise<void> {
    await this.call(this.redis.zrem(`${this.prefix}members:${group}`, member));
  }

  async acquire(key: string, owner: string, ttlMs: number): Promise<Lease | null> {
    const epoch = await this.call(this.redis.eval(ACQUIRE, 2, this.leaseKey(key), `${this.prefix}lease-epoch:${key}`, owner, ttlMs));
    return typeof epoch === 'number' ? { key, owner, epoch } : null;
  }

  async renew(lease: Lease, ttlMs: number): Promise<boolean> {
    return (await this.call(this.redis.eval(RENEW, 1, this.leaseKey(lease.key), `${lease.epoch} ${lease.owner}`, ttlMs))) === 1;
  }

  async release(lease: Lease): Promise<void> {
    await this.call(this.redis.eval(RELEASE, 1, this.leaseKey(lease.key), `${lease.epoch} ${lease.owner}`));
  }

  async getCheckpoint(key: string): Promise<FeedPosition | null> {
    return this.call(this.redis.get(`${this.prefix}checkpoint:${key}`));
  }

  async setCheckpoint(lease: Lease, position: FeedPosition): Promise<boolean> {
    return (await this.call(this.redis.eval(CHECKPOINT, 2, this.leaseKey(lease.key), `${this.prefix}checkpoint:${lease.key}`, `${lease.epoch} ${lease.owner}`, position))) === 1;
  }
}
