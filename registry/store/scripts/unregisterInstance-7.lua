--[[
  Removes an instance record, whatever its state. The event carries the last holder and
  epoch, so that its hoster stops its copy and proxies drop its route.

  Input:
    KEYS[1] instance hash
    KEYS[2] service's instance index (sorted set)
    KEYS[3] set of service names
    KEYS[4] unclaimed index (sorted set, all services)
    KEYS[5] service's unclaimed index (sorted set)
    KEYS[6] leases (sorted set by expiry)
    KEYS[7] event stream

    ARGV[1] service name the caller expects the instance to belong to
    ARGV[2] event stream max length (approximate)

  Output:
    the removed instance as a flat field/value list
    -1 no such instance (of this service)
]]
local rcall = redis.call
--- @include "appendEvent"
--- @include "removeInstance"
local instanceKey = KEYS[1]
local cur = rcall('HMGET', instanceKey, 'id', 'service', 'machine', 'epoch')
if not cur[1] or cur[2] ~= ARGV[1] then
  return -1
end
local id = cur[1]
local fields = rcall('HGETALL', instanceKey)

removeInstance(instanceKey, id, cur[2], KEYS[2], KEYS[5], KEYS[3], KEYS[4], KEYS[6])
appendEvent(KEYS[7], ARGV[2], 'kind', 'unregistered', 'instance', id, 'service', cur[2], 'epoch', cur[4], 'machine', cur[3] or '')

return fields
