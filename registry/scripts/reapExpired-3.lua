--[[
  Returns instances whose lease expired (their holder stopped renewing) to unclaimed. Safe to
  run from every registry process at once: each expired lease is reaped exactly once.

  Input:
    KEYS[1] leases (sorted set by expiry)
    KEYS[2] unclaimed index (sorted set, all services)
    KEYS[3] event stream

    ARGV[1] key prefix (instance keys are prefix .. 'instance:' .. id)
    ARGV[2] most instances to reap in this call
    ARGV[3] event stream max length (approximate)

  Output:
    a list of {id, service, machine, epoch} for each reaped instance
]]
local rcall = redis.call
local prefix = ARGV[1]

local t = rcall('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expired = rcall('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
local reaped = {}

for _, id in ipairs(expired) do
  rcall('ZREM', KEYS[1], id)
  local instanceKey = prefix .. 'instance:' .. id
  local cur = rcall('HMGET', instanceKey, 'service', 'state', 'machine', 'epoch', 'seq', 'leaseUntil')
  if cur[1] and cur[2] ~= 'unclaimed' and tonumber(cur[6]) <= now then
    rcall('HSET', instanceKey, 'state', 'unclaimed', 'reason', 'lease_expired', 'updatedAt', now)
    rcall('HDEL', instanceKey, 'machine', 'host', 'port', 'pid', 'leaseUntil', 'claimAttributes')
    rcall('ZADD', KEYS[2], cur[5], id)
    rcall('ZADD', prefix .. 'service:' .. cur[1] .. ':unclaimed', cur[5], id)
    rcall('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*',
      'kind', 'expired', 'instance', id, 'service', cur[1], 'epoch', cur[4], 'machine', cur[3],
      'reason', 'lease_expired')
    reaped[#reaped + 1] = { id, cur[1], cur[3], cur[4] }
  end
end

return reaped
