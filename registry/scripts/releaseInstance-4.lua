--[[
  Gives a claim back: the instance becomes unclaimed again, for any machine to claim with a
  higher epoch. Refused unless the caller holds the current claim.

  Input:
    KEYS[1] instance hash
    KEYS[2] leases (sorted set by expiry)
    KEYS[3] unclaimed index (sorted set, all services)
    KEYS[4] event stream

    ARGV[1] machine name
    ARGV[2] claim epoch
    ARGV[3] reason (e.g. crash_loop, evacuating)
    ARGV[4] event stream max length (approximate)
    ARGV[5] key prefix (the service's unclaimed index is prefix .. 'service:' .. name .. ':unclaimed')
    ARGV[6] service the caller expects the instance to belong to

  Output:
    the instance as a flat field/value list
    -1 no such instance (of this service)
    -2 stale epoch: the caller's claim is gone
]]
local rcall = redis.call
local instanceKey = KEYS[1]
local cur = rcall('HMGET', instanceKey, 'id', 'service', 'state', 'machine', 'epoch', 'seq')
if not cur[1] or cur[2] ~= ARGV[6] then
  return -1
end
if cur[4] ~= ARGV[1] or cur[5] ~= ARGV[2] or cur[3] == 'unclaimed' then
  return -2
end

local t = rcall('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
rcall('HSET', instanceKey, 'state', 'unclaimed', 'reason', ARGV[3], 'updatedAt', now)
rcall('HDEL', instanceKey, 'machine', 'host', 'port', 'pid', 'leaseUntil', 'claimAttributes')
rcall('ZREM', KEYS[2], cur[1])
rcall('ZADD', KEYS[3], cur[6], cur[1])
rcall('ZADD', ARGV[5] .. 'service:' .. cur[2] .. ':unclaimed', cur[6], cur[1])
rcall('XADD', KEYS[4], 'MAXLEN', '~', ARGV[4], '*',
  'kind', 'released', 'instance', cur[1], 'service', cur[2], 'epoch', cur[5], 'machine', cur[4],
  'reason', ARGV[3])

return rcall('HGETALL', instanceKey)
