--[[
  Records a new, unclaimed instance of a service. Its path must be one no app owns (nor a
  prefix above or below it), or one of the app of the same name as the service: an instance
  registered by hand never takes over another app's traffic.

  Input:
    KEYS[1] instance hash
    KEYS[2] service's instance index (sorted set)
    KEYS[3] set of service names
    KEYS[4] unclaimed index (sorted set, all services)
    KEYS[5] service's unclaimed index (sorted set)
    KEYS[6] event stream
    KEYS[7] registration sequence counter
    KEYS[8] path prefix → app name (hash)
    KEYS[9] sorted set of the path prefixes of KEYS[8]

    ARGV[1] instance id
    ARGV[2] service name
    ARGV[3] path prefix
    ARGV[4] attributes (JSON object)
    ARGV[5] files (bundle digest, or '')
    ARGV[6] release version (or '')
    ARGV[7] event stream max length (approximate)

  Output:
    the instance as a flat field/value list
    -3 an instance with this id exists
    {-5, owner, the prefix it owns} another app owns this path, a prefix above or one below it
]]
local rcall = redis.call
--- @include "redisNow"
--- @include "appendEvent"
--- @include "pathConflict"
local instanceKey = KEYS[1]
local id, service = ARGV[1], ARGV[2]

if rcall('EXISTS', instanceKey) == 1 then
  return -3
end
local owner, owned = pathConflict(KEYS[8], KEYS[9], ARGV[3], service)
if owner then
  return { -5, owner, owned }
end

local now = redisNow()
local seq = rcall('INCR', KEYS[7])

rcall('HSET', instanceKey,
  'id', id, 'service', service, 'path', ARGV[3], 'attributes', ARGV[4], 'files', ARGV[5],
  'release', ARGV[6], 'state', 'unclaimed', 'epoch', 0, 'seq', seq,
  'createdAt', now, 'updatedAt', now)
rcall('ZADD', KEYS[2], seq, id)
rcall('SADD', KEYS[3], service)
rcall('ZADD', KEYS[4], seq, id)
rcall('ZADD', KEYS[5], seq, id)
appendEvent(KEYS[6], ARGV[7], 'kind', 'registered', 'instance', id, 'service', service, 'epoch', 0)

return rcall('HGETALL', instanceKey)
