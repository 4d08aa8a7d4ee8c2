--[[
  The holder reports that it stopped a `stopping` instance: its record is removed.
  Refused unless the caller holds the current claim.

  Input:
    KEYS[1] instance hash
    KEYS[2] service's instance index (sorted set)
    KEYS[3] set of service names
    KEYS[4] unclaimed index (sorted set, all services)
    KEYS[5] service's unclaimed index (sorted set)
    KEYS[6] leases (sorted set by expiry)
    KEYS[7] event stream

    ARGV[1] service the caller expects the instance to belong to
    ARGV[2] machine name
    ARGV[3] claim epoch
    ARGV[4] event stream max length (approximate)

  Output:
    1 removed
    -1 no such instance (of this service)
    -2 stale epoch: the caller's claim is gone
    -4 the instance is not stopping (nobody asked it to stop)
]]
local rcall = redis.call
--- @include "appendEvent"
--- @include "removeInstance"
local instanceKey = KEYS[1]
local cur = rcall('HMGET', instanceKey, 'id', 'service', 'state', 'machine', 'epoch')
if not cur[1] or cur[2] ~= ARGV[1] then
  return -1
end
if cur[4] ~= ARGV[2] or cur[5] ~= ARGV[3] then
  return -2
end
if cur[3] ~= 'stopping' then
  return -4
end
local id, service = cur[1], cur[2]

removeInstance(instanceKey, id, service, KEYS[2], KEYS[5], KEYS[3], KEYS[4], KEYS[6])
appendEvent(KEYS[7], ARGV[4], 'kind', 'unregistered', 'instance', id, 'service', service, 'epoch', cur[5], 'machine', cur[4], 'reason', 'stopped')
return 1
