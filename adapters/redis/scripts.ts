/**
 * The Lua scripts of the shared session state (session-state.ts). Redis runs a script
 * atomically, so each check-then-write below holds across instances: two instances admitting
 * the same client id, or filling the same queue, cannot both pass a cap.
 *
 * Keys are built in the scripts from the prefix (ARGV[1]), so they suit one Redis server
 * (or a primary with replicas), not a sharded Redis Cluster: docs/cluster.md says so.
 */

/** Forgets one session: binding, subscriptions, queue. Shared by the scripts that end sessions. */
const END_SESSION = `
local function endSession(prefix, id)
  local principal = redis.call('HGET', prefix .. 'client:' .. id, 'p')
  if principal then redis.call('ZREM', prefix .. 'sessions:' .. principal, id) end
  redis.call('DEL', prefix .. 'client:' .. id, prefix .. 'subs:' .. id, prefix .. 'queue:' .. id, prefix .. 'queued:' .. id, prefix .. 'queue-ids:' .. id, prefix .. 'queue-sent:' .. id, prefix .. 'queue-bytes:' .. id)
  redis.call('SREM', prefix .. 'subscribers', id)
end
`;

export const SCRIPTS = {
  /**
   * ARGV: prefix, client id, principal, persistent (1/0), connection, maxSessions, now (ms).
   * Returns {'taken'}, {'full'} or {'ok', ended ids...}.
   */
  admit: `${END_SESSION}
local prefix, id, principal, persistent, connection, max, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6]), ARGV[7]
local clientKey = prefix .. 'client:' .. id
local owner = redis.call('HGET', clientKey, 'p')
local wasPersistent = redis.call('HGET', clientKey, 's') == '1'
local wasConnected = (redis.call('HGET', clientKey, 'c') or '') ~= ''
if owner and owner ~= principal and (wasPersistent or wasConnected) then return {'taken'} end
local sessions = prefix .. 'sessions:' .. principal
local ended = {}
if persistent == '1' then
  if not redis.call('ZSCORE', sessions, id) and redis.call('ZCARD', sessions) >= max then
    local evicted = false
    for _, other in ipairs(redis.call('ZRANGE', sessions, 0, -1)) do
      if (redis.call('HGET', prefix .. 'client:' .. other, 'c') or '') == '' then
        endSession(prefix, other)
        table.insert(ended, other)
        evicted = true
        break
      end
    end
    if not evicted then return {'full'} end
  end
  redis.call('ZADD', sessions, now, id)
elseif wasPersistent and owner == principal then
  redis.call('ZREM', sessions, id)
end
redis.call('HSET', clientKey, 'p', principal, 's', persistent, 'c', connection)
return {'ok', unpack(ended)}
`,

  /** ARGV: prefix, client id, connection. A persistent session stays, offline; a clean one ends. */
  closed: `
local clientKey = ARGV[1] .. 'client:' .. ARGV[2]
if redis.call('HGET', clientKey, 'c') ~= ARGV[3] then return 0 end
if redis.call('HGET', clientKey, 's') == '1' then redis.call('HSET', clientKey, 'c', '') else redis.call('DEL', clientKey) end
return 1
`,

  /** ARGV: prefix, client id. */
  endSession: `${END_SESSION}
endSession(ARGV[1], ARGV[2])
return 1
`,

  /** ARGV: prefix, principal. Returns the ended client ids. */
  endSessionsOf: `${END_SESSION}
local ids = redis.call('ZRANGE', ARGV[1] .. 'sessions:' .. ARGV[2], 0, -1)
for _, id in ipairs(ids) do endSession(ARGV[1], id) end
redis.call('DEL', ARGV[1] .. 'sessions:' .. ARGV[2])
return ids
`,

  /**
   * ARGV: prefix, delivery key, encoded delivery, payload bytes, maxMessages, maxBytes, client ids...
   * Idempotent by delivery key. Returns {id, limit, id, limit...} for the queues that were full.
   */
  enqueue: `
local prefix, key, encoded, bytes, maxMessages, maxBytes = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local full = {}
for i = 7, #ARGV do
  local id = ARGV[i]
  local queue = prefix .. 'queue:' .. id
  local held = tonumber(redis.call('GET', prefix .. 'queue-bytes:' .. id) or '0')
  if redis.call('HEXISTS', prefix .. 'queued:' .. id, key) == 1 then
    -- queued already (a delivery named by its origin is queued once)
  elseif redis.call('LLEN', queue) >= maxMessages then
    table.insert(full, id) table.insert(full, 'maxMessages')
  elseif held + bytes > maxBytes then
    table.insert(full, id) table.insert(full, 'maxBytes')
  else
    redis.call('HSET', prefix .. 'queued:' .. id, key, encoded)
    redis.call('RPUSH', queue, key)
    redis.call('INCRBY', prefix .. 'queue-bytes:' .. id, bytes)
  end
end
return full
`,

  /** ARGV: prefix, client id, delivery key, message id. Returns 1 when the delivery is queued. */
  sent: `
local prefix, id, key, messageId = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if redis.call('HEXISTS', prefix .. 'queued:' .. id, key) == 0 then return 0 end
redis.call('HSET', prefix .. 'queue-ids:' .. id, messageId, key)
redis.call('HSET', prefix .. 'queue-sent:' .. id, key, messageId)
return 1
`,

  /**
   * ARGV: prefix, client id, 'id' or 'key', value. Removes the delivery and returns
   * {encoded, messageId} or nil.
   */
  acknowledge: `
local prefix, id, by, value = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local key = value
if by == 'id' then
  key = redis.call('HGET', prefix .. 'queue-ids:' .. id, value)
  if not key then return nil end
end
local encoded = redis.call('HGET', prefix .. 'queued:' .. id, key)
local messageId = redis.call('HGET', prefix .. 'queue-sent:' .. id, key)
if messageId then redis.call('HDEL', prefix .. 'queue-ids:' .. id, messageId) end
redis.call('HDEL', prefix .. 'queue-sent:' .. id, key)
if not encoded then return nil end
redis.call('HDEL', prefix .. 'queued:' .. id, key)
redis.call('LREM', prefix .. 'queue:' .. id, 1, key)
redis.call('DECRBY', prefix .. 'queue-bytes:' .. id, tonumber(string.match(encoded, '^(%d+)|')))
return {encoded, messageId or ''}
`,

  /**
   * ARGV: prefix, principal, maxMessages, maxBytes, then topic, bytes pairs. Returns the
   * limit hit ('maxMessages' or 'maxBytes') or '' once recorded.
   */
  admitRetained: `
local key = ARGV[1] .. 'retained-by:' .. ARGV[2]
local maxMessages, maxBytes = tonumber(ARGV[3]), tonumber(ARGV[4])
local count = redis.call('HLEN', key)
local bytes = 0
for _, size in ipairs(redis.call('HVALS', key)) do bytes = bytes + tonumber(size) end
local after = {}
for i = 5, #ARGV, 2 do after[ARGV[i]] = tonumber(ARGV[i + 1]) end
for topic, size in pairs(after) do
  local before = redis.call('HGET', key, topic)
  if not before then count = count + 1 end
  bytes = bytes + size - tonumber(before or '0')
end
if count > maxMessages then return 'maxMessages' end
if bytes > maxBytes then return 'maxBytes' end
for topic, size in pairs(after) do redis.call('HSET', key, topic, size) end
return ''
`,

  /** ARGV: prefix, principal. Returns the topics it retained, and forgets them. */
  takeRetained: `
local key = ARGV[1] .. 'retained-by:' .. ARGV[2]
local topics = redis.call('HKEYS', key)
redis.call('DEL', key)
return topics
`,
} as const;

export type ScriptName = keyof typeof SCRIPTS;
