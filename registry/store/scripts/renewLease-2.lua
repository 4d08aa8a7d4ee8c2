--[[
  Extends the lease of a claim. Refused unless the caller holds the current claim. Renewals
  change no state, so they append no event.

  Input:
    KEYS[1] instance hash
    KEYS[2] leases (sorted set by expiry)

    ARGV[1] machine name
    ARGV[2] claim epoch
    ARGV[3] lease length (ms)
    ARGV[4] service the caller expects the instance to belong to

  Output:
    {new lease expiry (ms, Redis clock), state}: the state tells the holder at every renewal
    whether it is asked to stop (stopping) without a read of its own
    -1 no such instance (of this service)
    -2 stale epoch: the caller's claim is gone
]]
local rcall = redis.call
--- @include "redisNow"
local instanceKey = KEYS[1]
local cur = rcall('HMGET', instanceKey, 'id', 'state', 'machine', 'epoch', 'service')
if not cur[1] or cur[5] ~= ARGV[4] then
  return -1
end
if cur[3] ~= ARGV[1] or cur[4] ~= ARGV[2] or cur[2] == 'unclaimed' then
  return -2
end

local now = redisNow()
local leaseUntil = now + tonumber(ARGV[3])
rcall('HSET', instanceKey, 'leaseUntil', leaseUntil)
rcall('ZADD', KEYS[2], leaseUntil, cur[1])
return { leaseUntil, cur[2] }
