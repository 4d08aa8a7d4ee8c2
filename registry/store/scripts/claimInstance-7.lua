--[[
  Claims the oldest unclaimed instance of a service for a machine, as a lease with a fencing
  epoch. A retried request (same request id, same machine) whose claim still holds gets that
  same claim back, so a lost reply never makes a second claim.

  Input:
    KEYS[1] service's unclaimed index (sorted set)
    KEYS[2] unclaimed index (sorted set, all services)
    KEYS[3] leases (sorted set by expiry)
    KEYS[4] epoch counter
    KEYS[5] event stream
    KEYS[6] service's instance index (sorted set): only read, to tell an unknown service
    KEYS[7] the request id's claim record (string; unused without a request id)

    ARGV[1] instance key format (registry/store/keys.ts formats.instance: '*' where the id goes)
    ARGV[2] service name
    ARGV[3] machine name
    ARGV[4] host the instance listens on
    ARGV[5] port
    ARGV[6] claim attributes (JSON object)
    ARGV[7] lease length (ms)
    ARGV[8] request id ('' for none)
    ARGV[9] path the instance must have ('' for any)
    ARGV[10] event stream max length (approximate)
    ARGV[11] the id of the one unclaimed instance wanted ('' for the oldest)

  Output:
    the claimed instance as a flat field/value list
    -10 nothing unclaimed (matching the path, or with that id) for this service
    -11 no such service: it has no instances at all
]]
local rcall = redis.call
--- @include "keyFormat"
--- @include "redisNow"
--- @include "appendEvent"
local instanceKeyOf = keyFormat(ARGV[1])
local service, machine = ARGV[2], ARGV[3]
local leaseMs = tonumber(ARGV[7])
local requestId, wantedPath = ARGV[8], ARGV[9]

local now = redisNow()
local requestKey = KEYS[7]

if requestId ~= '' then
  local previous = rcall('GET', requestKey)
  if previous then
    local sep = string.find(previous, ' ', 1, true)
    local prevId, prevEpoch = string.sub(previous, 1, sep - 1), string.sub(previous, sep + 1)
    local prevKey = instanceKeyOf(prevId)
    local cur = rcall('HMGET', prevKey, 'machine', 'epoch', 'state')
    if cur[1] == machine and cur[2] == prevEpoch and (cur[3] == 'claimed' or cur[3] == 'running') then
      local leaseUntil = now + leaseMs
      rcall('HSET', prevKey, 'leaseUntil', leaseUntil)
      rcall('ZADD', KEYS[3], leaseUntil, prevId)
      return rcall('HGETALL', prevKey)
    end
  end
end

local id
if ARGV[11] ~= '' then
  if rcall('ZSCORE', KEYS[1], ARGV[11]) then
    id = ARGV[11]
  end
elseif wantedPath == '' then
  id = rcall('ZRANGE', KEYS[1], 0, 0)[1]
else
  for _, candidate in ipairs(rcall('ZRANGE', KEYS[1], 0, -1)) do
    if rcall('HGET', instanceKeyOf(candidate), 'path') == wantedPath then
      id = candidate
      break
    end
  end
end
if not id then
  if rcall('EXISTS', KEYS[6]) == 0 then
    return -11
  end
  return -10
end

local instanceKey = instanceKeyOf(id)
local epoch = rcall('INCR', KEYS[4])
local leaseUntil = now + leaseMs
rcall('HSET', instanceKey, 'state', 'claimed', 'machine', machine, 'host', ARGV[4], 'port', ARGV[5],
  'claimAttributes', ARGV[6], 'epoch', epoch, 'leaseUntil', leaseUntil, 'updatedAt', now, 'reason', '')
-- A new claim: no process yet, and no restarts under it (the count is per claim).
rcall('HDEL', instanceKey, 'pid', 'restarts')
rcall('ZREM', KEYS[1], id)
rcall('ZREM', KEYS[2], id)
rcall('ZADD', KEYS[3], leaseUntil, id)
if requestId ~= '' then
  -- Kept a few leases long: a retry comes within seconds, and a stale entry is harmless.
  rcall('SET', requestKey, id .. ' ' .. epoch, 'PX', leaseMs * 4)
end
appendEvent(KEYS[5], ARGV[10], 'kind', 'claimed', 'instance', id, 'service', service, 'epoch', epoch, 'machine', machine)

return rcall('HGETALL', instanceKey)
