/**
 * The Lua scripts that change the cluster's state in Redis (docs/CLUSTER.md,
 * "What is in Redis"). Each runs atomically; one that changes a room appends
 * its event to the stream in the same step. Every script takes the key
 * prefix as ARGV[1], the node id as ARGV[2] and the stream's trimming length
 * as ARGV[3]; they declare no keys, so they need one Redis, not Redis Cluster.
 */

const COMMON = `
local P, node, maxlen = ARGV[1], ARGV[2], ARGV[3]
local function event(kind, room, user)
  redis.call('XADD', P .. 'events', 'MAXLEN', '~', maxlen, '*', 'n', node, 'k', kind, 'r', room, 'u', user)
end
local function leave_room(user)
  local room = redis.call('HGET', P .. 'user-room', user)
  if not room then return 0 end
  redis.call('HDEL', P .. 'user-room', user)
  redis.call('ZREM', P .. 'room:' .. room, user)
  event('l', room, user)
  return 1
end
local function remove_user(owner, user)
  if redis.call('HGET', P .. 'users', user) ~= owner then return 0 end
  leave_room(user)
  redis.call('HDEL', P .. 'users', user)
  redis.call('SREM', P .. 'node-users:' .. owner, user)
  return 1
end
local function remove_node(id)
  local n = 0
  for _, user in ipairs(redis.call('SMEMBERS', P .. 'node-users:' .. id)) do n = n + remove_user(id, user) end
  redis.call('DEL', P .. 'node-users:' .. id)
  redis.call('SREM', P .. 'nodes', id)
  return n
end
local function alive(boot)
  return redis.call('GET', P .. 'node:' .. node) == boot
end
`;

/**
 * ARGV[4] boot id, ARGV[5] lease key TTL in ms, ARGV[6] a new epoch.
 * Takes the node id: {'taken'} while another boot holds a live lease on it,
 * else {'ok', the cluster's epoch} after the previous boot's users (if any)
 * were removed.
 */
export const REGISTER = `${COMMON}
local boot, ttl, epoch = ARGV[4], ARGV[5], ARGV[6]
local cur = redis.call('GET', P .. 'node:' .. node)
if cur and cur ~= boot then return {'taken'} end
redis.call('SET', P .. 'cluster', epoch, 'NX')
if not cur then remove_node(node) end
redis.call('SET', P .. 'node:' .. node, boot, 'PX', ttl)
redis.call('SADD', P .. 'nodes', node)
return {'ok', redis.call('GET', P .. 'cluster')}
`;

/**
 * ARGV[4] boot id, ARGV[5] lease key TTL in ms, ARGV[6] the epoch this node
 * joined. Renews the lease and removes the nodes whose lease expired.
 * Returns {state, users removed, the live node ids}: state 'ok', 'rebuild' (Redis lost its
 * data since this node wrote its state: the epoch is missing or another) or
 * 'removed' (this node's lease had run out: it was removed as dead); a
 * 'rebuild' answer has no node ids.
 */
export const HEARTBEAT = `${COMMON}
local boot, ttl, epoch = ARGV[4], ARGV[5], ARGV[6]
if redis.call('GET', P .. 'cluster') ~= epoch then return {'rebuild', 0} end
local state = 'ok'
if alive(boot) then redis.call('PEXPIRE', P .. 'node:' .. node, ttl) else state = 'removed' end
local removed = 0
for _, id in ipairs(redis.call('SMEMBERS', P .. 'nodes')) do
  if redis.call('EXISTS', P .. 'node:' .. id) == 0 then removed = removed + remove_node(id) end
end
return {state, removed, redis.call('SMEMBERS', P .. 'nodes')}
`;

/**
 * ARGV[4] boot id, ARGV[5] lease key TTL, ARGV[6] a new epoch, then triples
 * (user, room or '', enter score or ''). Writes this node's state back after
 * Redis lost its data. Returns {the cluster's epoch, users another node
 * claimed meanwhile...}.
 */
export const REBUILD = `${COMMON}
local boot, ttl, epoch = ARGV[4], ARGV[5], ARGV[6]
redis.call('SET', P .. 'cluster', epoch, 'NX')
redis.call('SET', P .. 'node:' .. node, boot, 'PX', ttl)
redis.call('SADD', P .. 'nodes', node)
local lost = {redis.call('GET', P .. 'cluster')}
for i = 7, #ARGV, 3 do
  local user, room, score = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local owner = redis.call('HGET', P .. 'users', user)
  if owner and owner ~= node then
    table.insert(lost, user)
  else
    redis.call('HSET', P .. 'users', user, node)
    redis.call('SADD', P .. 'node-users:' .. node, user)
    if room ~= '' then
      redis.call('HSET', P .. 'user-room', user, room)
      redis.call('ZADD', P .. 'room:' .. room, score, user)
      if tonumber(redis.call('GET', P .. 'enter-seq') or '0') < tonumber(score) then redis.call('SET', P .. 'enter-seq', score) end
    end
  end
end
return lost
`;

/** ARGV[4] boot id, ARGV[5] user. Returns 1 (claimed), 0 (another node has it), -1 (this node is not alive in Redis). */
export const CLAIM = `${COMMON}
local boot, user = ARGV[4], ARGV[5]
if not alive(boot) then return -1 end
local owner = redis.call('HGET', P .. 'users', user)
if owner == node then return 1 end
if owner then return 0 end
redis.call('HSET', P .. 'users', user, node)
redis.call('SADD', P .. 'node-users:' .. node, user)
return 1
`;

/**
 * ARGV[4] boot id, ARGV[5] user, ARGV[6] room, ARGV[7] room capacity.
 * Returns {1, score, members...} (entered, or had entered: a resent
 * command), {0} (full), {-1} (not this node's user or node), {-2} (in
 * another room).
 */
export const ENTER = `${COMMON}
local boot, user, room, cap = ARGV[4], ARGV[5], ARGV[6], tonumber(ARGV[7])
if not alive(boot) or redis.call('HGET', P .. 'users', user) ~= node then return {-1} end
local key = P .. 'room:' .. room
local cur = redis.call('HGET', P .. 'user-room', user)
if cur and cur ~= room then return {-2} end
local score
if cur then
  score = redis.call('ZSCORE', key, user)
else
  if redis.call('ZCARD', key) >= cap then return {0} end
  score = redis.call('INCR', P .. 'enter-seq')
  redis.call('ZADD', key, score, user)
  redis.call('HSET', P .. 'user-room', user, room)
  event('e', room, user)
end
local out = {1, tostring(score)}
for _, m in ipairs(redis.call('ZRANGE', key, 0, -1)) do table.insert(out, m) end
return out
`;

/** ARGV[4] user, ARGV[5] room. Takes the user out of that room; 1 when it was there. */
export const LEAVE = `${COMMON}
local user, room = ARGV[4], ARGV[5]
if redis.call('HGET', P .. 'users', user) ~= node then return 0 end
if redis.call('HGET', P .. 'user-room', user) ~= room then return 0 end
return leave_room(user)
`;

/** ARGV[4] user. Logs the user out (and out of its room) when this node holds it. */
export const RELEASE = `${COMMON}
return remove_user(node, ARGV[4])
`;

/** ARGV[4] boot id. Removes this node and its users, as at a clean shutdown. */
export const DEREGISTER = `${COMMON}
local boot = ARGV[4]
local cur = redis.call('GET', P .. 'node:' .. node)
if cur and cur ~= boot then return 0 end
local n = remove_node(node)
redis.call('DEL', P .. 'node:' .. node)
return n
`;
