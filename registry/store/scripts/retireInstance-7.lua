--[[
  Moves an instance one step towards its end, so that no request is ever sent to a process
  that is about to stop. Called again and again by the reconciler; each call is idempotent:
    unclaimed            → removed at once (it never ran)
    claimed, crashed     → stopping (it was never routable)
    running              → draining until now + drain time (proxies stop routing to it)
    draining, time up    → stopping (its hoster stops it and confirms, or its lease expires)
    stopping             → unchanged

  Input:
    KEYS[1] instance hash
    KEYS[2] service's instance index (sorted set)
    KEYS[3] set of service names
    KEYS[4] unclaimed index (sorted set, all services)
    KEYS[5] service's unclaimed index (sorted set)
    KEYS[6] leases (sorted set by expiry)
    KEYS[7] event stream

    ARGV[1] service the caller expects the instance to belong to
    ARGV[2] drain time (ms): how long a running instance stays unroutable before it stops
    ARGV[3] reason (e.g. scaled_down, replaced, app_deleted)
    ARGV[4] event stream max length (approximate)

  Output:
    the instance's state after the call: 'removed', 'stopping' or 'draining'
    -1 no such instance (of this service)
]]
local rcall = redis.call
--- @include "redisNow"
--- @include "appendEvent"
--- @include "removeInstance"
local instanceKey = KEYS[1]
local cur = rcall('HMGET', instanceKey, 'id', 'service', 'state', 'drainUntil', 'machine', 'epoch')
if not cur[1] or cur[2] ~= ARGV[1] then
  return -1
end
local id, service, state = cur[1], cur[2], cur[3]
local now = redisNow()

local function event(kind)
  appendEvent(KEYS[7], ARGV[4], 'kind', kind, 'instance', id, 'service', service, 'epoch', cur[6] or '0', 'machine', cur[5] or '',
    'reason', ARGV[3])
end

if state == 'unclaimed' then
  removeInstance(instanceKey, id, service, KEYS[2], KEYS[5], KEYS[3], KEYS[4], KEYS[6])
  event('unregistered')
  return 'removed'
end

if state == 'running' then
  rcall('HSET', instanceKey, 'state', 'draining', 'drainUntil', now + tonumber(ARGV[2]), 'reason', ARGV[3], 'updatedAt', now)
  event('draining')
  return 'draining'
end

if state == 'claimed' or state == 'crashed' or (state == 'draining' and now >= tonumber(cur[4] or '0')) then
  rcall('HSET', instanceKey, 'state', 'stopping', 'reason', ARGV[3], 'updatedAt', now)
  event('stopping')
  return 'stopping'
end

return state
