--[[
  Applies one scaler decision and records it, fenced by the scaler's lease: a scaler that lost
  its lease (paused past it) or read an app that changed since cannot change anything.
  A notice (to == from) only records; so does a move (cause 'rebalance'), which counts as a
  change for the cool-downs. A decision is about one process type: web's count is the app's
  `instances`, every other type's its `formation` entry (1 when absent), as for berth scale.

  Input:
    KEYS[1] app hash
    KEYS[2] scaler lease
    KEYS[3] event stream
    KEYS[4] decision log (list, newest first)
    KEYS[5] scaler's memory of each app (hash app → JSON {changeAt, noticeAt} of web, and
            `types` {type → {changeAt, noticeAt}} of the others)

    ARGV[1] app name
    ARGV[2] holder id of the calling scaler
    ARGV[3] instances the decision started from
    ARGV[4] instances it wants
    ARGV[5] decision (a JSON object), recorded as it is with an `at` added
    ARGV[6] decision log length kept
    ARGV[7] event stream max length (approximate)
    ARGV[8] cause (for the event)
    ARGV[9] process type ('web' or another)

  Output:
    the time it was recorded (ms)
    -12 no such app (or it is being deleted)
    -7 the caller does not hold the scaler lease
    -8 the type's instances or policy changed since the decision was made
]]
local rcall = redis.call
--- @include "redisNow"
--- @include "appendEvent"
local name, holder = ARGV[1], ARGV[2]
local from, to = tonumber(ARGV[3]), tonumber(ARGV[4])
if rcall('GET', KEYS[2]) ~= holder then
  return -7
end
local cur = rcall('HMGET', KEYS[1], 'name', 'state', 'instances', 'autoscale', 'formation', 'autoscaleByType')
if not cur[1] or cur[2] ~= 'active' then
  return -12
end
local process = ARGV[9]
local formation = cur[5] and cjson.decode(cur[5]) or {}
local count, policed
if process == 'web' then
  count, policed = tonumber(cur[3]), cur[4] ~= false
else
  count = tonumber(formation[process] or 1)
  policed = cur[6] and cjson.decode(cur[6])[process] ~= nil or false
end
if count ~= from or not policed then
  return -8
end
local now = redisNow()
local memory = cjson.decode(rcall('HGET', KEYS[5], name) or '{}')
local remembered = memory
if process ~= 'web' then
  memory.types = memory.types or {}
  memory.types[process] = memory.types[process] or {}
  remembered = memory.types[process]
end
if to ~= from then
  if process == 'web' then
    rcall('HSET', KEYS[1], 'instances', to, 'updatedAt', now)
  else
    formation[process] = to
    rcall('HSET', KEYS[1], 'formation', cjson.encode(formation), 'updatedAt', now)
  end
  -- The same event an API scale sends: hosters and proxies react alike.
  appendEvent(KEYS[3], ARGV[7], 'kind', 'app-updated', 'service', name)
  remembered.changeAt = now
elseif ARGV[8] == 'rebalance' then
  -- A move (the caller then flags the instance evacuating): a change for the cool-downs.
  remembered.changeAt = now
else
  remembered.noticeAt = now
end
rcall('HSET', KEYS[5], name, cjson.encode(memory))
-- Spliced, not decoded and encoded again: cjson would turn every empty array into {}.
local decision = ARGV[5] == '{}' and ('{"at":' .. now .. '}') or ('{"at":' .. now .. ',' .. string.sub(ARGV[5], 2))
rcall('LPUSH', KEYS[4], decision)
rcall('LTRIM', KEYS[4], 0, tonumber(ARGV[6]) - 1)
appendEvent(KEYS[3], ARGV[7], 'kind', 'scaler-decision', 'service', name, 'reason', ARGV[8] .. ' ' .. (process == 'web' and '' or (process .. ' ')) .. from .. '->' .. to)
return now
