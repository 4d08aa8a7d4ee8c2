--[[
  Handles instances whose lease expired (their holder stopped renewing). One that was being
  retired (draining or stopping) is removed: its holder is gone, and so is its process. Any
  other returns to unclaimed, for another machine to claim with a higher epoch. Safe to run
  from every registry process at once: each expired lease is handled exactly once.

  Input:
    KEYS[1] leases (sorted set by expiry)
    KEYS[2] unclaimed index (sorted set, all services)
    KEYS[3] event stream

    ARGV[1] key prefix (instance keys are prefix .. 'instance:' .. id; a service's indexes
            prefix .. 'service:' .. name .. ':instances' and ':unclaimed'; prefix .. 'services')
    ARGV[2] most instances to handle in this call
    ARGV[3] event stream max length (approximate)

  Output:
    a list of {id, service, machine, epoch, outcome} for each, outcome 'unclaimed' or 'removed'
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
    local service = cur[1]
    local outcome
    if cur[2] == 'draining' or cur[2] == 'stopping' then
      local serviceIndex = prefix .. 'service:' .. service .. ':instances'
      rcall('DEL', instanceKey)
      rcall('ZREM', serviceIndex, id)
      rcall('ZREM', KEYS[2], id)
      rcall('ZREM', prefix .. 'service:' .. service .. ':unclaimed', id)
      if rcall('ZCARD', serviceIndex) == 0 then
        rcall('SREM', prefix .. 'services', service)
      end
      outcome = 'removed'
      rcall('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*',
        'kind', 'unregistered', 'instance', id, 'service', service, 'epoch', cur[4], 'machine', cur[3],
        'reason', 'lease_expired')
    else
      rcall('HSET', instanceKey, 'state', 'unclaimed', 'reason', 'lease_expired', 'updatedAt', now)
      rcall('HDEL', instanceKey, 'machine', 'host', 'port', 'pid', 'leaseUntil', 'claimAttributes')
      rcall('ZADD', KEYS[2], cur[5], id)
      rcall('ZADD', prefix .. 'service:' .. service .. ':unclaimed', cur[5], id)
      outcome = 'unclaimed'
      rcall('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], '*',
        'kind', 'expired', 'instance', id, 'service', service, 'epoch', cur[4], 'machine', cur[3],
        'reason', 'lease_expired')
    end
    reaped[#reaped + 1] = { id, service, cur[3], cur[4], outcome }
  end
end

return reaped
