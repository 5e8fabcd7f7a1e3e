"""Read-only Lua for the fair queue: the first jobs in the order workers will take them, and places in the queue.

`HEAD` replays the next n pops on a copy of the tags in Lua tables: only the n first servers, their n first members
and those members' n first jobs can be served in the next n turns, so it reads O(n^2) entries at worst, whatever
is waiting. `PLACES` uses it for exact places near the front and estimates the rest (see `imagine.fair.places`).
"""

from __future__ import annotations

from imagine.fair_lua import PRELUDE

SIMULATE = r"""
local function better(a, b)
  return b == nil or a.tag < b.tag or (a.tag == b.tag and a.e < b.e)
end

local function load_members(g, n)
  local out = {}
  local raw = redis.call('ZRANGE', P .. 'members:' .. g, 0, n - 1, 'WITHSCORES')
  for i = 1, #raw, 2 do
    local _, u = split(raw[i])
    out[#out + 1] = {u = u, tag = tonumber(raw[i + 1]), e = raw[i]}
  end
  return out
end

-- The ids of the next `limit` jobs, in the order workers will take them (RQ's own list first).
local function simulate(limit)
  local out = {}
  for _, id in ipairs(redis.call('LRANGE', FRONT, 0, limit - 1)) do out[#out + 1] = id end
  local left = limit - #out
  if left <= 0 then return out end
  local servers = {}
  local raw = redis.call('ZRANGE', P .. 'servers', 0, left - 1, 'WITHSCORES')
  for i = 1, #raw, 2 do
    local _, g = split(raw[i])
    servers[#servers + 1] = {g = g, tag = tonumber(raw[i + 1]), e = raw[i]}
  end
  for _ = 1, left do
    local best = nil
    for _, sv in ipairs(servers) do
      if sv.e and better(sv, best) then best = sv end
    end
    if best == nil then break end
    best.members = best.members or load_members(best.g, left)
    local bm = nil
    for _, m in ipairs(best.members) do
      if m.e and better(m, bm) then bm = m end
    end
    if bm.jobs == nil then
      bm.jobs = redis.call('ZRANGE', jobs_of(best.g, bm.u), 0, left - 1, 'WITHSCORES')
      bm.i = 1
    end
    out[#out + 1] = bm.jobs[2 * bm.i - 1]
    bm.i = bm.i + 1
    bm.tag = bm.tag + 1
    if bm.jobs[2 * bm.i - 1] then bm.e = pad(tonumber(bm.jobs[2 * bm.i])) .. ':' .. bm.u else bm.e = nil end
    best.tag = best.tag + 1
    local nb = nil
    for _, m in ipairs(best.members) do
      if m.e and better(m, nb) then nb = m end
    end
    if nb then best.e = split(nb.e) .. ':' .. best.g else best.e = nil end
  end
  return out
end
"""

#: ARGV: prefix, n. The ids of the next n jobs in order.
HEAD = PRELUDE + SIMULATE + "\nreturn simulate(tonumber(ARGV[2]))\n"

#: ARGV: prefix, exact (how many places to replay), then job ids. For each id: its 0-based place, -1 when it waits
#: for a paused server, -2 when it is not waiting. Places past `exact` are estimates.
PLACES = (
    PRELUDE
    + SIMULATE
    + r"""
local SCAN = 64

-- Jobs of the entries of `zset` scored below `slot` that come before `slot`: an entry at tag t with w jobs has
-- min(w, slot - t) of them ahead. The SCAN lowest entries are summed exactly; the rest, at tags at least the last
-- scanned, are estimated from the scanned ones' mean (never more than slot - the last scanned tag each).
local function ahead(zset, slot, self_id, size_of)
  local rows = redis.call('ZRANGEBYSCORE', zset, '-inf', '(' .. slot, 'WITHSCORES', 'LIMIT', 0, SCAN)
  local sum, seen, last = 0, 0, nil
  for i = 1, #rows, 2 do
    local _, who = split(rows[i])
    local tag = tonumber(rows[i + 1])
    last = tag
    if who ~= self_id then
      sum = sum + math.min(size_of(who), slot - tag)
      seen = seen + 1
    end
  end
  local rest = redis.call('ZCOUNT', zset, '-inf', '(' .. slot) - #rows / 2
  if rest > 0 and seen > 0 then sum = sum + rest * math.min(sum / seen, slot - last) end
  return sum
end

local function estimate(id, g, u)
  local rank = redis.call('ZRANK', jobs_of(g, u), id)
  local mz = P .. 'members:' .. g
  local mine = tonumber(redis.call('ZSCORE', mz, member_entry(g, u)))
  local within = rank + ahead(mz, mine + rank, u, function(v) return redis.call('ZCARD', jobs_of(g, v)) end)
  local slot = num(redis.call('HGET', P .. 'g:' .. g, 's')) + within
  local others = ahead(P .. 'servers', slot, g, function(h) return num(redis.call('HGET', P .. 'waiting', h)) end)
  return redis.call('LLEN', FRONT) + within + others
end

local exact = tonumber(ARGV[2])
local order = simulate(exact)
local at = {}
for i, id in ipairs(order) do at[id] = i - 1 end
local out = {}
for i = 3, #ARGV do
  local id = ARGV[i]
  local place = at[id]
  if place == nil then
    local where = redis.call('HGET', P .. 'meta', id)
    if where then
      local g, u = split(where)
      if redis.call('SISMEMBER', PAUSED, g) == 1 then
        place = -1
      else
        place = math.max(#order, math.floor(estimate(id, g, u) + 0.5))
      end
    else
      place = redis.call('LPOS', FRONT, id) or -2
    end
  end
  out[#out + 1] = place
end
return out
"""
)
