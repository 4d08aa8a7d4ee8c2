--[[
  Sets or removes an app's scaling policy (the scaler changes its instances within it).

  Input:
    KEYS[1] app hash
    KEYS[2] event stream

    ARGV[1] app name
    ARGV[2] policy (JSON), or '' to remove it
    ARGV[3] event stream max length (approximate)

  Output:
    1
    -12 no such app (or it is being deleted)
]]
local rcall = redis.call
--- @include "redisNow"
--- @include "appendEvent"
local cur = rcall('HMGET', KEYS[1], 'name', 'state')
if not cur[1] or cur[2] ~= 'active' then
  return -12
end
local now = redisNow()
if ARGV[2] == '' then
  rcall('HDEL', KEYS[1], 'autoscale')
else
  rcall('HSET', KEYS[1], 'autoscale', ARGV[2])
end
rcall('HSET', KEYS[1], 'updatedAt', now)
appendEvent(KEYS[2], ARGV[3], 'kind', 'app-autoscale', 'service', ARGV[1], 'reason', ARGV[2] == '' and 'off' or 'on')
return 1
