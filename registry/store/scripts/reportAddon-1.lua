--[[
  The holder of an add-on's lease renews it and says how its server is (running, starting,
  crashed), fenced by the epoch: a holder that lost the lease learns it and stops its copy.
  `state` 'released' gives the lease back (the hoster stops cleanly).

  Input:
    KEYS[1] add-on hash

    ARGV[1] machine
    ARGV[2] epoch
    ARGV[3] lease (ms)
    ARGV[4] state
    ARGV[5] pid ('' when none)
    ARGV[6] detail ('' when none)
    ARGV[7] restarts

  Output:
    the lease expiry (0 when released), or -23 (no such add-on), -2 (stale epoch)
]]
local rcall = redis.call
--- @include "redisNow"
--- @include "addonHolder"
local failure = addonHolderFailure(KEYS[1], ARGV[1], ARGV[2])
if failure then
  return failure
end
local now = redisNow()
if ARGV[4] == 'released' then
  rcall('HSET', KEYS[1], 'leaseUntil', 0, 'state', 'stopped', 'pid', '', 'detail', ARGV[6])
  return 0
end
local expiry = now + tonumber(ARGV[3])
rcall('HSET', KEYS[1], 'leaseUntil', expiry, 'state', ARGV[4], 'pid', ARGV[5], 'detail', ARGV[6], 'restarts', ARGV[7])
return expiry
