--[[
  Gives a claim back: the instance becomes unclaimed again, for any machine to claim with a
  higher epoch. A release for a failure (crash_loop, unhealthy, build_failed,
  bundle_rejected, no_start_command) also records the machine it failed on, so that the reconciler can tell a bad release from a bad machine. An instance
  that was being retired (draining, stopping) is removed instead: nobody should run it again.
  Refused unless the caller holds the current claim.

  Input:
    KEYS[1] instance hash
    KEYS[2] leases (sorted set by expiry)
    KEYS[3] unclaimed index (sorted set, all services)
    KEYS[4] event stream

    ARGV[1] machine name
    ARGV[2] claim epoch
    ARGV[3] reason (e.g. crash_loop, unhealthy, evacuating)
    ARGV[4] event stream max length (approximate)
    ARGV[5] key prefix (a service's indexes are prefix .. 'service:' .. name .. ':instances'
            and ':unclaimed'; the set of services prefix .. 'services')
    ARGV[6] service the caller expects the instance to belong to
    ARGV[7] what the failure looked like, in the app's own words ('' for none): kept as
            the instance's reasonDetail until its next release, for the release's verdict

  Output:
    the instance as a flat field/value list (empty when it was removed)
    -1 no such instance (of this service)
    -2 stale epoch: the caller's claim is gone
]]
local rcall = redis.call
local instanceKey = KEYS[1]
local prefix = ARGV[5]
local cur = rcall('HMGET', instanceKey, 'id', 'service', 'state', 'machine', 'epoch', 'seq', 'failedOn')
if not cur[1] or cur[2] ~= ARGV[6] then
  return -1
end
if cur[4] ~= ARGV[1] or cur[5] ~= ARGV[2] or cur[3] == 'unclaimed' then
  return -2
end
local id, service = cur[1], cur[2]
local t = rcall('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local serviceUnclaimed = prefix .. 'service:' .. service .. ':unclaimed'

if cur[3] == 'draining' or cur[3] == 'stopping' then
  local serviceIndex = prefix .. 'service:' .. service .. ':instances'
  rcall('DEL', instanceKey)
  rcall('ZREM', serviceIndex, id)
  rcall('ZREM', KEYS[2], id)
  rcall('ZREM', KEYS[3], id)
  rcall('ZREM', serviceUnclaimed, id)
  if rcall('ZCARD', serviceIndex) == 0 then
    rcall('SREM', prefix .. 'services', service)
  end
  rcall('XADD', KEYS[4], 'MAXLEN', '~', ARGV[4], '*',
    'kind', 'unregistered', 'instance', id, 'service', service, 'epoch', cur[5], 'machine', cur[4],
    'reason', ARGV[3])
  return {}
end

local failedOn = cur[7] or ''
local failures = { crash_loop = true, unhealthy = true, build_failed = true, bundle_rejected = true, no_start_command = true,
  invalid_env = true, not_listening = true }
if failures[ARGV[3]] then
  if not string.find(',' .. failedOn .. ',', ',' .. ARGV[1] .. ',', 1, true) then
    failedOn = failedOn == '' and ARGV[1] or (failedOn .. ',' .. ARGV[1])
  end
end

rcall('HSET', instanceKey, 'state', 'unclaimed', 'reason', ARGV[3], 'failedOn', failedOn, 'updatedAt', now,
  'reasonDetail', ARGV[7] or '')
rcall('HDEL', instanceKey, 'machine', 'host', 'port', 'pid', 'leaseUntil', 'claimAttributes')
rcall('ZREM', KEYS[2], id)
rcall('ZADD', KEYS[3], cur[6], id)
rcall('ZADD', serviceUnclaimed, cur[6], id)
rcall('XADD', KEYS[4], 'MAXLEN', '~', ARGV[4], '*',
  'kind', 'released', 'instance', id, 'service', service, 'epoch', cur[5], 'machine', cur[4],
  'reason', ARGV[3])

return rcall('HGETALL', instanceKey)
