--[[
  Sets or removes the scaling policy of one process type of an app (the scaler changes that
  type's instances within it): web's in the `autoscale` field, every other type's in the
  `autoscaleByType` object.

  Input:
    KEYS[1] app hash
    KEYS[2] event stream

    ARGV[1] app name
    ARGV[2] policy (JSON), or '' to remove it
    ARGV[3] event stream max length (approximate)
    ARGV[4] process type ('web', or another type of the app's release)

  Output:
    1
    -12 no such app (or it is being deleted)
]]
local rcall = redis.call
--- @include "redisNow"
--- @include "appendEvent"
local cur = rcall('HMGET', KEYS[1], 'name', 'state', 'autoscaleByType')
if not cur[1] or cur[2] ~= 'active' then
  return -12
end
local now = redisNow()
local process = ARGV[4]
if process == 'web' then
  if ARGV[2] == '' then
    rcall('HDEL', KEYS[1], 'autoscale')
  else
    rcall('HSET', KEYS[1], 'autoscale', ARGV[2])
  end
else
  local byType = cur[3] and cjson.decode(cur[3]) or {}
  byType[process] = ARGV[2] ~= '' and cjson.decode(ARGV[2]) or nil
  if next(byType) == nil then
    rcall('HDEL', KEYS[1], 'autoscaleByType')
  else
    rcall('HSET', KEYS[1], 'autoscaleByType', cjson.encode(byType))
  end
end
rcall('HSET', KEYS[1], 'updatedAt', now)
appendEvent(KEYS[2], ARGV[3], 'kind', 'app-autoscale', 'service', ARGV[1], 'reason', (ARGV[2] == '' and 'off' or 'on') .. (process == 'web' and '' or (' ' .. process)))
return 1
