--[[
  Registers unclaimed instances of one process type of an app's release until it has as many
  live instances of that type and release (any state but draining or stopping, and not
  evacuating) as wanted; an instance without a type is `web`. Counting and adding happen in
  one script, so two reconcilers racing can never register more than wanted.

  Input:
    KEYS[1] service's instance index (sorted set)
    KEYS[2] set of service names
    KEYS[3] unclaimed index (sorted set, all services)
    KEYS[4] service's unclaimed index (sorted set)
    KEYS[5] event stream
    KEYS[6] registration sequence counter

    ARGV[1] instance key format (registry/store/keys.ts formats.instance: '*' where the id goes)
    ARGV[2] service (app) name
    ARGV[3] path prefix
    ARGV[4] release version
    ARGV[5] instances wanted of that release
    ARGV[6] attributes (JSON object: the release's requirements)
    ARGV[7] files (bundle digest)
    ARGV[8] event stream max length (approximate)
    ARGV[9] process type ('web', 'worker', …, 'release')
    ARGV[10..] fresh ids to use for new instances (at least as many as may be missing)

  Output:
    the ids registered (possibly none)
]]
local rcall = redis.call
--- @include "redisNow"
--- @include "appendEvent"
--- @include "keyFormat"
local instanceKeyOf = keyFormat(ARGV[1])
local service, release = ARGV[2], ARGV[4]
local wanted = tonumber(ARGV[5])
local process = ARGV[9]

local live = 0
for _, id in ipairs(rcall('ZRANGE', KEYS[1], 0, -1)) do
  local cur = rcall('HMGET', instanceKeyOf(id), 'release', 'state', 'evacuating', 'process')
  if cur[1] == release and cur[2] ~= 'draining' and cur[2] ~= 'stopping' and cur[3] ~= '1' and (cur[4] or 'web') == process then
    live = live + 1
  end
end

local now = redisNow()
local added = {}
local nextId = 10
while live < wanted and ARGV[nextId] do
  local id = ARGV[nextId]
  nextId = nextId + 1
  local instanceKey = instanceKeyOf(id)
  if rcall('EXISTS', instanceKey) == 0 then
    local seq = rcall('INCR', KEYS[6])
    rcall('HSET', instanceKey,
      'id', id, 'service', service, 'path', ARGV[3], 'attributes', ARGV[6], 'files', ARGV[7],
      'release', release, 'state', 'unclaimed', 'epoch', 0, 'seq', seq, 'createdAt', now, 'updatedAt', now, 'process', process)
    rcall('ZADD', KEYS[1], seq, id)
    rcall('SADD', KEYS[2], service)
    rcall('ZADD', KEYS[3], seq, id)
    rcall('ZADD', KEYS[4], seq, id)
    appendEvent(KEYS[5], ARGV[8], 'kind', 'registered', 'instance', id, 'service', service, 'epoch', 0, 'release', release)
    live = live + 1
    added[#added + 1] = id
  end
end
return added
