--[[
  A registry's backup scheduler claims the current period of an add-on's scheduled backups,
  once across every registry: the slot of Redis's clock (floor(now / every)) is taken only when
  it is later than the last one taken, so one backup is taken per period, never two, and a
  period no registry saw (all were down) is not made up for later.

  Input:
    KEYS[1] add-on hash

    ARGV[1] name
    ARGV[2] the add-on's id, as the caller read it (moved or re-created since: not claimed)

  Output:
    {the slot claimed, now (ms, Redis clock)}, or 0 (not due, taken already, no schedule, or
    not the add-on read)
]]
local rcall = redis.call
--- @include "redisNow"
local id, every, slot = unpack(rcall('HMGET', KEYS[1], 'id', 'backupEveryMs', 'backupSlot'))
if id ~= ARGV[2] or not every or tonumber(every) <= 0 then
  return 0
end
local now = redisNow()
local current = math.floor(now / tonumber(every))
if slot and tonumber(slot) >= current then
  return 0
end
rcall('HSET', KEYS[1], 'backupSlot', current)
return {current, now}
