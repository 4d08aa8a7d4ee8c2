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
    KEYS[5] service's instance index (sorted set)
    KEYS[6] service's unclaimed index (sorted set)
    KEYS[7] set of service names

    ARGV[1] machine name
    ARGV[2] claim epoch
    ARGV[3] reason (e.g. crash_loop, unhealthy, evacuating)
    ARGV[4] event stream max length (approximate)
    ARGV[5] service the caller expects the instance to belong to
    ARGV[6] what the failure looked like, in the app's own words ('' for none): kept as
            the instance's reasonDetail until its next release, for the release's verdict

  Output:
    the instance as a flat field/value list (empty when it was removed)
    -1 no such instance (of this service)
    -2 stale epoch: the caller's claim is gone
]]
local rcall = redis.call
--- @include "redisNow"
--- @include "appendEvent"
--- @include "removeInstance"
local instanceKey = KEYS[1]
local cur = rcall('HMGET', instanceKey, 'id', 'service', 'state', 'machine', 'epoch', 'seq', 'failedOn')
if not cur[1] or cur[2] ~= ARGV[5] then
  return -1
end
if cur[4] ~= ARGV[1] or cur[5] ~= ARGV[2] or cur[3] == 'unclaimed' then
  return -2
end
local id, service = cur[1], cur[2]
local now = redisNow()

if cur[3] == 'draining' or cur[3] == 'stopping' then
  removeInstance(instanceKey, id, service, KEYS[5], KEYS[6], KEYS[7], KEYS[3], KEYS[2])
  appendEvent(KEYS[4], ARGV[4], 'kind', 'unregistered', 'instance', id, 'service', service, 'epoch', cur[5], 'machine', cur[4],
    'reason', ARGV[3])
  return {}
end

local failedOn = cur[7] or ''
local failures = { crash_loop = true, unhealthy = true, build_failed = true, bundle_rejected = true, no_start_command = true,
  invalid_env = true, not_listening = true, out_of_memory = true, limits_unavailable = true,
  release_command_failed = true }
if failures[ARGV[3]] then
  if not string.find(',' .. failedOn .. ',', ',' .. ARGV[1] .. ',', 1, true) then
    failedOn = failedOn == '' and ARGV[1] or (failedOn .. ',' .. ARGV[1])
  end
end

rcall('HSET', instanceKey, 'state', 'unclaimed', 'reason', ARGV[3], 'failedOn', failedOn, 'updatedAt', now,
  'reasonDetail', ARGV[6] or '')
rcall('HDEL', instanceKey, 'machine', 'host', 'port', 'pid', 'leaseUntil', 'claimAttributes')
rcall('ZREM', KEYS[2], id)
rcall('ZADD', KEYS[3], cur[6], id)
rcall('ZADD', KEYS[6], cur[6], id)
appendEvent(KEYS[4], ARGV[4], 'kind', 'released', 'instance', id, 'service', service, 'epoch', cur[5], 'machine', cur[4],
  'reason', ARGV[3])

return rcall('HGETALL', instanceKey)
