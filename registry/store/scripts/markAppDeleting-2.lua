--[[
  Starts deleting an app: the reconciler retires its instances, then removes it.
  Idempotent.

  Input:
    KEYS[1] app hash
    KEYS[2] event stream

    ARGV[1] app name
    ARGV[2] event stream max length (approximate)

  Output:
    1
    -12 no such app
]]
local rcall = redis.call
--- @include "redisNow"
--- @include "appendEvent"
local cur = rcall('HMGET', KEYS[1], 'name', 'state')
if not cur[1] then
  return -12
end
if cur[2] ~= 'deleting' then
  local now = redisNow()
  rcall('HSET', KEYS[1], 'state', 'deleting', 'updatedAt', now)
  appendEvent(KEYS[2], ARGV[2], 'kind', 'app-deleting', 'service', ARGV[1])
end
return 1
