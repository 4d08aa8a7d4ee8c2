--[[
  Sets how often an add-on is backed up (berth addons:backup NAME --every 24h), only when the
  add-on exists; 0 turns it off. Periods are slots of Redis's clock (slot = floor(now / every)),
  the same for every registry: the current slot counts as taken, so the first scheduled backup
  is at the next slot's start, then one per slot (claimAddonBackup).

  Input:
    KEYS[1] add-on hash

    ARGV[1] name
    ARGV[2] period (ms; 0: off)

  Output:
    when the next scheduled backup is due (ms, Redis clock; 0 when off), or -23 (no such add-on)
]]
local rcall = redis.call
--- @include "redisNow"
if rcall('EXISTS', KEYS[1]) == 0 then
  return -23
end
local every = tonumber(ARGV[2])
if every <= 0 then
  rcall('HDEL', KEYS[1], 'backupEveryMs', 'backupSlot')
  return 0
end
local slot = math.floor(redisNow() / every)
rcall('HSET', KEYS[1], 'backupEveryMs', every, 'backupSlot', slot)
return (slot + 1) * every
