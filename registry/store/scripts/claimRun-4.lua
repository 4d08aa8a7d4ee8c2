--[[
  A hoster claims a pending run: a lease with a fencing epoch, so that it runs once.

  Input:
    KEYS[1] pending runs (sorted set)
    KEYS[2] run hash
    KEYS[3] run leases (sorted set, by lease expiry)
    KEYS[4] the epoch counter (shared with instance claims: it only ever increases)

    ARGV[1] run id
    ARGV[2] machine
    ARGV[3] lease (ms)

  Output:
    the claim's epoch, or 0 when the run is not pending (another hoster took it, or it was stopped)
]]
local rcall = redis.call
--- @include "redisNow"
if rcall('ZREM', KEYS[1], ARGV[1]) == 0 then
  return 0
end
if rcall('HGET', KEYS[2], 'state') ~= 'pending' then
  return 0
end
local now = redisNow()
local epoch = rcall('INCR', KEYS[4])
local expiry = now + tonumber(ARGV[3])
rcall('HSET', KEYS[2], 'state', 'starting', 'machine', ARGV[2], 'epoch', epoch, 'leaseExpiry', expiry)
rcall('ZADD', KEYS[3], expiry, ARGV[1])
return epoch
