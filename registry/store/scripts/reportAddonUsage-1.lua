--[[
  The holder of an add-on's lease records what it measured of its server (data size,
  connections), fenced by the epoch as reportAddon is: a hoster that lost the lease writes
  nothing. Only the usage fields are written: the state, lease and restarts stay reportAddon's.

  Input:
    KEYS[1] add-on hash

    ARGV[1] machine
    ARGV[2] epoch
    ARGV[3] bytes
    ARGV[4] connections
    ARGV[5] memory bytes ('' when the kind has none: PostgreSQL)

  Output:
    the time of the measurement (ms, Redis clock), or -23 (no such add-on), -2 (stale epoch)
]]
local rcall = redis.call
--- @include "addonHolder"
--- @include "redisNow"
local failure = addonHolderFailure(KEYS[1], ARGV[1], ARGV[2])
if failure then return failure end
local now = redisNow()
rcall('HSET', KEYS[1], 'usageBytes', ARGV[3], 'usageConnections', ARGV[4], 'usageMemoryBytes', ARGV[5], 'usageAt', now)
return now
