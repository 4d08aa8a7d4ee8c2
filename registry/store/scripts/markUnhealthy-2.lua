--[[
  Takes a running instance out of routing because it failed its health check while it ran:
  it goes back to claimed (the holder restarts it and reports it running again once it
  passes), with the reason and what the check saw. Refused unless the caller holds the claim.

  Input:
    KEYS[1] instance hash
    KEYS[2] event stream

    ARGV[1] machine name
    ARGV[2] claim epoch
    ARGV[3] what the check saw (e.g. "500 from GET /healthz"), kept as reasonDetail
    ARGV[4] event stream max length (approximate)
    ARGV[5] service the caller expects the instance to belong to

  Output:
    the instance as a flat field/value list (unchanged when it was not running: idempotent)
    -1 no such instance (of this service)
    -2 stale epoch: the caller's claim is gone
]]
local rcall = redis.call
--- @include "redisNow"
--- @include "appendEvent"
local instanceKey = KEYS[1]
local cur = rcall('HMGET', instanceKey, 'id', 'service', 'state', 'machine', 'epoch')
if not cur[1] or cur[2] ~= ARGV[5] then
  return -1
end
if cur[4] ~= ARGV[1] or cur[5] ~= ARGV[2] then
  return -2
end
if cur[3] ~= 'running' then
  return rcall('HGETALL', instanceKey)
end

local now = redisNow()
rcall('HSET', instanceKey, 'state', 'claimed', 'reason', 'unhealthy', 'reasonDetail', ARGV[3], 'updatedAt', now)
appendEvent(KEYS[2], ARGV[4], 'kind', 'unroutable', 'instance', cur[1], 'service', cur[2], 'epoch', cur[5], 'machine', cur[4])

return rcall('HGETALL', instanceKey)
