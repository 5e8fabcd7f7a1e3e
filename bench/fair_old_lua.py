"""The fair scheduler's Lua scripts (see `imagine.fair` for what they do and why). Each runs atomically in Redis.

Every script starts with `PRELUDE`, which names the keys and defines `collect` and `plan`. Job ids, server and
member ids travel as strings (snowflakes do not fit a Lua number). The scripts read `rq:job:<id>` and a job's
status without declaring those keys, which a single Redis (or Valkey) server allows; Redis Cluster would not.

KEYS: 1 the ready list (RQ's `rq:queue:<name>`), 2 meta, 3 served, 4 vt, 5 the paused set, 6 seq, then per script.
"""

from __future__ import annotations

from rq.job import Job

PRELUDE = r"""
local READY, META, SERVED, VT, PAUSED, SEQ = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]

local JOB = '@JOB@'

local function num(v) return tonumber(v) or 0 end

local function raise(hash, field, value)
  if num(redis.call('HGET', hash, field)) < value then redis.call('HSET', hash, field, value) end
end

-- Jobs of ours that left the ready list since the last plan were taken by a worker: each moves its server's and
-- its member's tags past the start tag it was planned with, and the virtual times up to that start tag. A job
-- back in the list that a worker had started (RQ retries it at the front) counts as taken and keeps its place.
local function collect()
  local ids = redis.call('LRANGE', READY, 0, -1)
  local listed = {}
  for _, id in ipairs(ids) do listed[id] = true end
  local waiting, parked = {}, {}
  local raw = redis.call('HGETALL', META)
  for i = 1, #raw, 2 do
    local id, m = raw[i], cjson.decode(raw[i + 1])
    if m.p == 1 then
      parked[id] = m
    elseif listed[id] and (redis.call('HGET', JOB .. id, 'started_at') or '') == '' then
      waiting[id] = m
    else
      if m.st then
        raise(SERVED, 's:' .. m.g, m.st + 1)
        raise(VT, '*', m.st)
        raise(SERVED, 'm:' .. m.g .. ':' .. m.u, m.mt + 1)
        raise(VT, m.g, m.mt)
      end
      redis.call('HDEL', META, id)
    end
  end
  return ids, waiting, parked
end

-- A server (or member) that had nothing waiting starts at the current virtual time: no credit for idle time.
local function clamp(field, vt_field)
  raise(SERVED, field, num(redis.call('HGET', VT, vt_field)))
end

-- Rewrite the ready list in fair order: jobs RQ put back on its own (retries) first, then start-time fair queueing
-- over servers, and within a server over its members; ties go to the job that has waited longest.
local function plan(ids, waiting)
  local front, groups, count = {}, {}, 0
  for _, id in ipairs(ids) do
    local m = waiting[id]
    if m == nil then
      front[#front + 1] = id
    elseif redis.call('SISMEMBER', PAUSED, m.g) == 1 then
      m.p = 1
      m.st, m.mt = nil, nil
      redis.call('HSET', META, id, cjson.encode(m))
    else
      local g = groups[m.g]
      if g == nil then
        g = {tag = num(redis.call('HGET', SERVED, 's:' .. m.g)), members = {}}
        groups[m.g] = g
      end
      local mem = g.members[m.u]
      if mem == nil then
        mem = {tag = num(redis.call('HGET', SERVED, 'm:' .. m.g .. ':' .. m.u)), jobs = {}, next = 1}
        g.members[m.u] = mem
      end
      mem.jobs[#mem.jobs + 1] = {id = id, m = m}
      count = count + 1
    end
  end
  for _, g in pairs(groups) do
    for _, mem in pairs(g.members) do
      table.sort(mem.jobs, function(a, b) return a.m.s < b.m.s end)
    end
  end
  local order = {}
  for _ = 1, count do
    local best_g, best_gtag, best_gseq, best_gid
    for gid, g in pairs(groups) do
      local head = nil
      for _, mem in pairs(g.members) do
        local job = mem.jobs[mem.next]
        if job and (head == nil or job.m.s < head) then head = job.m.s end
      end
      if head ~= nil and (best_g == nil or g.tag < best_gtag or (g.tag == best_gtag and head < best_gseq)) then
        best_g, best_gtag, best_gseq, best_gid = g, g.tag, head, gid
      end
    end
    local best_m, best_mtag, best_mseq
    for _, mem in pairs(best_g.members) do
      local job = mem.jobs[mem.next]
      if job and (best_m == nil or mem.tag < best_mtag or (mem.tag == best_mtag and job.m.s < best_mseq)) then
        best_m, best_mtag, best_mseq = mem, mem.tag, job.m.s
      end
    end
    local job = best_m.jobs[best_m.next]
    best_m.next = best_m.next + 1
    job.m.st, job.m.mt = best_g.tag, best_m.tag
    best_g.tag, best_m.tag = best_g.tag + 1, best_m.tag + 1
    redis.call('HSET', META, job.id, cjson.encode(job.m))
    order[#order + 1] = job.id
  end
  redis.call('DEL', READY)
  for _, list in ipairs({front, order}) do
    for i = 1, #list, 1000 do
      redis.call('RPUSH', READY, unpack(list, i, math.min(i + 999, #list)))
    end
  end
  return #front + #order
end
""".replace("@JOB@", Job.redis_job_namespace_prefix)

#: KEYS 7-9: the member's active and hourly sets, the server's active set.
#: ARGV: job id, server, member, now, then (empty when unlimited) member_active, member_hourly, queue_depth,
#: paused_accepts (1/0), window seconds, active-set TTL.
#: Returns {limit, retry_after} when refused ('' when admitted), then the job's place (0-based) or -1 when parked.
SUBMIT = (
    PRELUDE
    + r"""
local id, g, u, now = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local paused = redis.call('SISMEMBER', PAUSED, g) == 1
if ARGV[5] ~= '' then
  local member_active, member_hourly, depth = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
  local accepts, window, ttl = ARGV[8] == '1', tonumber(ARGV[9]), tonumber(ARGV[10])
  if paused and not accepts then return {'paused', '0', '-1'} end
  local live = {queued = true, started = true, scheduled = true, deferred = true}
  for _, key in ipairs({KEYS[7], KEYS[9]}) do
    for _, other in ipairs(redis.call('ZRANGE', key, 0, -1)) do
      if not live[redis.call('HGET', JOB .. other, 'status') or ''] then redis.call('ZREM', key, other) end
    end
  end
  if redis.call('ZCARD', KEYS[7]) >= member_active then return {'member_active', '0', '-1'} end
  redis.call('ZREMRANGEBYSCORE', KEYS[8], '-inf', now - window)
  if redis.call('ZCARD', KEYS[8]) >= member_hourly then
    local oldest = redis.call('ZRANGE', KEYS[8], 0, 0, 'WITHSCORES')
    return {'member_hourly', tostring(tonumber(oldest[2]) + window - now), '-1'}
  end
  if redis.call('ZCARD', KEYS[9]) >= depth then return {'queue_depth', '0', '-1'} end
  redis.call('ZADD', KEYS[7], now, id)
  redis.call('ZADD', KEYS[8], now, id)
  redis.call('ZADD', KEYS[9], now, id)
  redis.call('EXPIRE', KEYS[7], ttl)
  redis.call('EXPIRE', KEYS[8], math.ceil(window) + 60)
  redis.call('EXPIRE', KEYS[9], ttl)
end
local ids, waiting = collect()
local g_busy, u_busy = false, false
for _, m in pairs(waiting) do
  if m.g == g then
    g_busy = true
    if m.u == u then u_busy = true end
  end
end
if not g_busy then clamp('s:' .. g, '*') end
if not u_busy then clamp('m:' .. g .. ':' .. u, g) end
local m = {g = g, u = u, s = redis.call('INCR', SEQ), p = 0}
if paused then m.p = 1 end
redis.call('HSET', META, id, cjson.encode(m))
if not paused then
  waiting[id] = m
  ids[#ids + 1] = id
end
plan(ids, waiting)
local place = redis.call('LPOS', READY, id)
if not place then return {'', '0', '-1'} end
return {'', '0', tostring(place)}
"""
)

#: ARGV: job id. Takes a waiting or parked job out of the queue; returns its meta JSON, or false when it was not
#: waiting (a worker has it, or it is unknown).
CANCEL = (
    PRELUDE
    + r"""
local id = ARGV[1]
local meta = redis.call('HGET', META, id)
local removed = redis.call('LREM', READY, 0, id)
if meta and (removed > 0 or cjson.decode(meta).p == 1) then
  redis.call('HDEL', META, id)
  return meta
end
if removed > 0 then return '{}' end
return false
"""
)

#: Re-plan after a pause (the server's waiting jobs leave the ready list) or a resume (ARGV[1]: the server, whose
#: parked jobs come back, starting at the current virtual time). ARGV[1] empty: just re-plan.
REPLAN = (
    PRELUDE
    + r"""
local g = ARGV[1]
local ids, waiting, parked = collect()
if g ~= '' and redis.call('SISMEMBER', PAUSED, g) == 0 then
  local back = {}
  for id, m in pairs(parked) do
    if m.g == g then
      m.p = 0
      back[#back + 1] = {id = id, m = m}
    end
  end
  table.sort(back, function(a, b) return a.m.s < b.m.s end)
  if #back > 0 then
    local busy = false
    for _, m in pairs(waiting) do if m.g == g then busy = true end end
    if not busy then clamp('s:' .. g, '*') end
  end
  for _, job in ipairs(back) do
    waiting[job.id] = job.m
    ids[#ids + 1] = job.id
  end
end
return plan(ids, waiting)
"""
)

#: KEYS 7: the queue's intermediate list. ARGV: job id, server, member. A worker popped a job of a paused server
#: (a retry RQ put back on its own, say): park it instead of running it. Returns 1 when parked, 0 when the server
#: is not paused (run it).
PARK = (
    PRELUDE
    + r"""
local id, g, u = ARGV[1], ARGV[2], ARGV[3]
if redis.call('SISMEMBER', PAUSED, g) == 0 then return 0 end
redis.call('LREM', KEYS[7], 0, id)
redis.call('LREM', READY, 0, id)
local raw = redis.call('HGET', META, id)
local m
if raw then m = cjson.decode(raw) else m = {g = g, u = u, s = redis.call('INCR', SEQ)} end
m.p, m.st, m.mt = 1, nil, nil
redis.call('HSET', META, id, cjson.encode(m))
return 1
"""
)
