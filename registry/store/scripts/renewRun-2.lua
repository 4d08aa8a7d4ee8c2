--[[
  The run's holder renews its lease (and says once that the command started).

  Input:
    KEYS[1] run hash
    KEYS[2] run leases (sorted set)

    ARGV[1] machine
    ARGV[2] epoch
    ARGV[3] lease (ms)
    ARGV[4] '1': the command started now (state running, startedAt), '0': a renewal

  Output:
    0 the claim is not this holder's any more (stop the command), 1 renewed,
    2 renewed and a stop was asked for (the CLI went away, or berth runs:stop)
]]
local rcall = redis.call
--- @include "redisNow"
local run = rcall('HMGET', KEYS[1], 'machine', 'epoch', 'state', 'stopRequested')
if run[1] ~= ARGV[1] or run[2] ~= ARGV[2] or (run[3] ~= 'starting' and run[3] ~= 'running') then
  return 0
end
local now = redisNow()
local expiry = now + tonumber(ARGV[3])
rcall('HSET', KEYS[1], 'leaseExpiry', expiry)
if ARGV[4] == '1' then
  rcall('HSET', KEYS[1], 'state', 'running', 'startedAt', now)
end
rcall('ZADD', KEYS[2], expiry, rcall('HGET', KEYS[1], 'id'))
if run[4] == '1' then
  return 2
end
return 1
