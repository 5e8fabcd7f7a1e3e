"""The fair queue's Lua scripts (see `imagine.fair` for the rules and why). Each runs atomically in Redis and costs
O(log n) in the jobs waiting: it touches one job, one member, one server and a few sorted sets, never a list of all.

Every script starts with `PRELUDE`. KEYS: 1 RQ's own list for the queue (the front lane), 2 RQ's intermediate list,
3 the paused set, then per script. ARGV[1] is the queue's key prefix (`imagine:fair:<queue>:`); the keys under it
are built here (one Redis server, or Valkey, allows that; Redis Cluster would not):

- `seq` counter; `vt` the global virtual time; `total` jobs waiting; `bell` a short list that wakes idle workers
- `servers` zset of the servers with jobs ready: member `<seq of the job it would give next>:<server>`, score its tag
- `sidle` zset of idle servers whose tag is still ahead of `vt` (server -> tag); `waiting` hash server -> jobs
- `g:<server>` hash: `s` its tag, `vt` its members' virtual time, `e` its entry in `servers` ('' when paused)
- `members:<server>` zset of its members with jobs: `<seq of the member's first job>:<member>`, score the member's tag
- `midle:<server>` zset of idle members whose tag is still ahead of the server's `vt`
- `jobs:<server>:<member>` zset of the member's waiting jobs by seq; `meta` hash job -> `<server>:<member>`;
  `since` zset job -> enqueue time
"""

from __future__ import annotations

from rq.job import Job

PRELUDE = r"""
local FRONT, INTER, PAUSED = KEYS[1], KEYS[2], KEYS[3]
local P = ARGV[1]
local JOB = '@JOB@'

local function num(v) return tonumber(v) or 0 end
local function pad(seq) return string.format('%016d', seq) end
local function split(e)
  local i = string.find(e, ':', 1, true)
  return string.sub(e, 1, i - 1), string.sub(e, i + 1)
end
local function jobs_of(g, u) return P .. 'jobs:' .. g .. ':' .. u end

-- A member's entry in its server's zset: its first job's seq (ties between equal tags go to the longest waiting).
local function member_entry(g, u)
  local head = redis.call('ZRANGE', jobs_of(g, u), 0, 0, 'WITHSCORES')
  if head[1] == nil then return nil end
  return pad(tonumber(head[2])) .. ':' .. u
end

-- Put the member's entry (after its jobs changed) in its server's zset with `tag`; the new entry, or nil.
local function set_member(g, u, old, tag)
  local new = member_entry(g, u)
  local mz = P .. 'members:' .. g
  if old and old ~= new then redis.call('ZREM', mz, old) end
  if new then redis.call('ZADD', mz, tag, new) end
  return new
end

-- A member with nothing waiting keeps its tag only while it is ahead of its server's virtual time.
local function idle_member(g, u, tag)
  if tag > num(redis.call('HGET', P .. 'g:' .. g, 'vt')) then redis.call('ZADD', P .. 'midle:' .. g, tag, u) end
end

-- The server's entry in `servers`: the seq of the job it would give next (its first member's), unless paused.
local function sync_server(g)
  local gh = P .. 'g:' .. g
  local old = redis.call('HGET', gh, 'e')
  local new = nil
  if redis.call('SISMEMBER', PAUSED, g) == 0 then
    local first = redis.call('ZRANGE', P .. 'members:' .. g, 0, 0)
    if first[1] ~= nil then new = split(first[1]) .. ':' .. g end
  end
  if old and old ~= '' and old ~= new then redis.call('ZREM', P .. 'servers', old) end
  if new then redis.call('ZADD', P .. 'servers', num(redis.call('HGET', gh, 's')), new) end
  redis.call('HSET', gh, 'e', new or '')
end

-- One job fewer waiting for server `g`; a server left with none forgets its members' turns and, while its own tag
-- is ahead of the virtual time, waits in `sidle`.
local function less(g, id)
  redis.call('HDEL', P .. 'meta', id)
  redis.call('ZREM', P .. 'since', id)
  redis.call('DECR', P .. 'total')
  if redis.call('HINCRBY', P .. 'waiting', g, -1) > 0 then
    sync_server(g)
    return
  end
  redis.call('HDEL', P .. 'waiting', g)
  local gh = P .. 'g:' .. g
  local s = num(redis.call('HGET', gh, 's'))
  local e = redis.call('HGET', gh, 'e')
  if e and e ~= '' then redis.call('ZREM', P .. 'servers', e) end
  if s > num(redis.call('GET', P .. 'vt')) then redis.call('ZADD', P .. 'sidle', s, g) end
  redis.call('DEL', gh, P .. 'members:' .. g, P .. 'midle:' .. g)
end

-- Put job `id` of member `u` of server `g` in its place. A server or member that had nothing waiting starts at the
-- current virtual time (no credit for idling), or at its own tag if that is still ahead.
local function place(id, g, u, seq, now)
  if redis.call('HEXISTS', P .. 'meta', id) == 1 then return false end
  local gh = P .. 'g:' .. g
  if num(redis.call('HGET', P .. 'waiting', g)) == 0 then
    local vt = num(redis.call('GET', P .. 'vt'))
    local s = tonumber(redis.call('ZSCORE', P .. 'sidle', g)) or vt
    if s < vt then s = vt end
    redis.call('ZREM', P .. 'sidle', g)
    redis.call('DEL', gh, P .. 'members:' .. g, P .. 'midle:' .. g)
    redis.call('HSET', gh, 's', s, 'vt', 0, 'e', '')
  end
  local old = member_entry(g, u)
  local tag
  if old then
    tag = tonumber(redis.call('ZSCORE', P .. 'members:' .. g, old))
  else
    local vtg = num(redis.call('HGET', gh, 'vt'))
    tag = tonumber(redis.call('ZSCORE', P .. 'midle:' .. g, u)) or vtg
    if tag < vtg then tag = vtg end
    redis.call('ZREM', P .. 'midle:' .. g, u)
  end
  redis.call('ZADD', jobs_of(g, u), seq, id)
  set_member(g, u, old, tag)
  redis.call('HINCRBY', P .. 'waiting', g, 1)
  redis.call('INCR', P .. 'total')
  redis.call('HSET', P .. 'meta', id, g .. ':' .. u)
  redis.call('ZADD', P .. 'since', now, id)
  sync_server(g)
  redis.call('LPUSH', P .. 'bell', '1')
  redis.call('LTRIM', P .. 'bell', 0, 63)
  return true
end

-- Take waiting job `id` out without serving it (cancel); its server and member keep their tags. 'g:u' or false.
local function unplace(id)
  local where = redis.call('HGET', P .. 'meta', id)
  if not where then return false end
  local g, u = split(where)
  local old = member_entry(g, u)
  local tag = tonumber(redis.call('ZSCORE', P .. 'members:' .. g, old))
  redis.call('ZREM', jobs_of(g, u), id)
  if not set_member(g, u, old, tag) then idle_member(g, u, tag) end
  less(g, id)
  return where
end

-- The job a worker takes next from the fair structure: the first member (lowest tag, then longest waiting) of the
-- first server (the same). Both move one turn on; the virtual times move up to the tags it was served at.
local function head_fair()
  local top = redis.call('ZRANGE', P .. 'servers', 0, 0, 'WITHSCORES')
  if top[1] == nil then return nil end
  local _, g = split(top[1])
  local mtop = redis.call('ZRANGE', P .. 'members:' .. g, 0, 0, 'WITHSCORES')
  local _, u = split(mtop[1])
  local id = redis.call('ZRANGE', jobs_of(g, u), 0, 0)[1]
  return id, g, u, tonumber(top[2]), mtop[1], tonumber(mtop[2])
end

local function pop_fair()
  local id, g, u, s, mentry, m = head_fair()
  if id == nil then return nil end
  if s > num(redis.call('GET', P .. 'vt')) then redis.call('SET', P .. 'vt', s) end
  redis.call('HSET', P .. 'g:' .. g, 's', s + 1, 'vt', m)
  redis.call('ZREM', jobs_of(g, u), id)
  if not set_member(g, u, mentry, m + 1) then idle_member(g, u, m + 1) end
  redis.call('ZREMRANGEBYSCORE', P .. 'midle:' .. g, '-inf', m)
  less(g, id)
  redis.call('ZREMRANGEBYSCORE', P .. 'sidle', '-inf', num(redis.call('GET', P .. 'vt')))
  return id
end
""".replace("@JOB@", Job.redis_job_namespace_prefix)

#: KEYS 4-6: the member's active and hourly sets, the server's active set. ARGV: prefix, job id, server, member,
#: now, then (empty when unlimited) member_active, member_hourly, queue_depth, paused_accepts (1/0), window
#: seconds, active-set TTL; then the cap on jobs waiting in the whole queue (empty: none); then '1' for a dry run
#: (the checks alone: nothing counted or placed, no job needed).
#: Returns {limit, retry_after}: limit '' when admitted. The member's set is pruned of ended jobs at every admission
#: (it holds at most `member_active`); the server's only when it looks full, so an admission costs O(log n) plus
#: the member's limit, and O(queue_depth) only at the server's limit.
SUBMIT = (
    PRELUDE
    + r"""
local id, g, u, now = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local live = {queued = true, started = true, scheduled = true, deferred = true}
local function count(key, limit, eager)
  if not eager and redis.call('ZCARD', key) < limit then return 0 end
  for _, other in ipairs(redis.call('ZRANGE', key, 0, -1)) do
    if not live[redis.call('HGET', JOB .. other, 'status') or ''] then redis.call('ZREM', key, other) end
  end
  return redis.call('ZCARD', key)
end
if ARGV[12] ~= '' and num(redis.call('GET', P .. 'total')) >= tonumber(ARGV[12]) then
  return {'global_queue', '0'}
end
if ARGV[6] ~= '' then
  local member_active, member_hourly, depth = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
  local accepts, window, ttl = ARGV[9] == '1', tonumber(ARGV[10]), tonumber(ARGV[11])
  if not accepts and redis.call('SISMEMBER', PAUSED, g) == 1 then return {'paused', '0'} end
  if count(KEYS[4], member_active, true) >= member_active then return {'member_active', '0'} end
  redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now - window)
  if redis.call('ZCARD', KEYS[5]) >= member_hourly then
    local oldest = redis.call('ZRANGE', KEYS[5], 0, 0, 'WITHSCORES')
    return {'member_hourly', tostring(tonumber(oldest[2]) + window - now)}
  end
  if count(KEYS[6], depth, false) >= depth then return {'queue_depth', '0'} end
  if ARGV[13] == '1' then return {'', '0'} end
  redis.call('ZADD', KEYS[4], now, id)
  redis.call('ZADD', KEYS[5], now, id)
  redis.call('ZADD', KEYS[6], now, id)
  redis.call('EXPIRE', KEYS[4], ttl)
  redis.call('EXPIRE', KEYS[5], math.ceil(window) + 60)
  redis.call('EXPIRE', KEYS[6], ttl)
end
place(id, g, u, redis.call('INCR', P .. 'seq'), now)
return {'', '0'}
"""
)

#: ARGV: prefix, then optionally the job id the caller expects next (a batching worker claiming a companion: pop
#: only if that job is still next). Moves the next job to RQ's intermediate list, as RQ's own dequeue does; returns
#: {id, 'front' or 'fair'}, or false when nothing is ready (or another job is next). RQ's own list comes first:
#: what RQ puts back itself (a retry at the front) has had its turn already.
POP = (
    PRELUDE
    + r"""
local expected = ARGV[2]
local front = redis.call('LINDEX', FRONT, 0)
if front then
  if expected and expected ~= front then return false end
  redis.call('LMOVE', FRONT, INTER, 'LEFT', 'RIGHT')
  return {front, 'front'}
end
if expected then
  local id = head_fair()
  if id ~= expected then return false end
end
local id = pop_fair()
if id == nil then return false end
redis.call('RPUSH', INTER, id)
return {id, 'fair'}
"""
)

#: ARGV: prefix, job id. Takes a waiting job out (from the fair structure or RQ's own list). Returns 'server:member',
#: '' when it was only on RQ's list, or false when it was not waiting (a worker has it, or it is unknown).
CANCEL = (
    PRELUDE
    + r"""
local removed = redis.call('LREM', FRONT, 0, ARGV[2])
local where = unplace(ARGV[2])
if where then return where end
if removed > 0 then return '' end
return false
"""
)

#: ARGV: prefix, server, '1' to pause or '0' to resume. A paused server leaves `servers` (its jobs stay where they
#: are); on resume it comes back at the current virtual time, or its own tag if that is ahead. Returns 1 if changed.
PAUSE = (
    PRELUDE
    + r"""
local g = ARGV[2]
local changed
if ARGV[3] == '1' then
  changed = redis.call('SADD', PAUSED, g)
else
  changed = redis.call('SREM', PAUSED, g)
end
if num(redis.call('HGET', P .. 'waiting', g)) > 0 then
  if ARGV[3] ~= '1' then
    local gh = P .. 'g:' .. g
    local vt = num(redis.call('GET', P .. 'vt'))
    if num(redis.call('HGET', gh, 's')) < vt then redis.call('HSET', gh, 's', vt) end
    redis.call('LPUSH', P .. 'bell', '1')
    redis.call('LTRIM', P .. 'bell', 0, 63)
  end
  sync_server(g)
end
return changed
"""
)

#: ARGV: prefix, job id, server, member, now. A worker took a job of a paused server from RQ's own list (a retry):
#: it goes back among its member's waiting jobs, first of them (it has waited already). 1 when parked, 0 when the
#: server is not paused (run it).
PARK = (
    PRELUDE
    + r"""
local id, g, u = ARGV[2], ARGV[3], ARGV[4]
if redis.call('SISMEMBER', PAUSED, g) == 0 then return 0 end
redis.call('LREM', INTER, 0, id)
redis.call('LREM', FRONT, 0, id)
place(id, g, u, 0, tonumber(ARGV[5]))
return 1
"""
)
