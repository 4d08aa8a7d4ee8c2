--[[
  Creates an app with its first release (v1). The app's path prefix must be free: no other app
  owns it, a prefix above it or one below it (checked here, so two creates never both win).

  Input:
    KEYS[1] app hash
    KEYS[2] set of app names
    KEYS[3] path prefix → app name (hash)
    KEYS[4] app's releases (hash version → JSON)
    KEYS[5] app's release counter
    KEYS[6] event stream
    KEYS[7] sorted set of the path prefixes of KEYS[3] (to find those below a path)

    ARGV[1] app name
    ARGV[2] path prefix
    ARGV[3] instances wanted
    ARGV[4] strip prefix ('1' or '0')
    ARGV[5] release (JSON object: bundle, env, command, requirements, healthCheck, description, createdBy)
    ARGV[6] event stream max length (approximate)

  Output:
    the version of the first release (1)
    -13 an app with this name exists
    {-5, owner, the prefix it owns} another app owns this path, a prefix above or one below it
]]
local rcall = redis.call
--- @include "redisNow"
--- @include "appendEvent"
--- @include "pathConflict"
local name, path = ARGV[1], ARGV[2]
if rcall('EXISTS', KEYS[1]) == 1 then
  return -13
end
local owner, owned = pathConflict(KEYS[3], KEYS[7], path, name)
if owner then
  return { -5, owner, owned }
end
local now = redisNow()

-- A name used by an app deleted earlier starts its versions again.
rcall('DEL', KEYS[4], KEYS[5])
local version = rcall('INCR', KEYS[5])
local release = cjson.decode(ARGV[5])
release.version = version
release.createdAt = now
release.status = 'deploying'
rcall('HSET', KEYS[4], version, cjson.encode(release))
rcall('HSET', KEYS[1], 'name', name, 'path', path, 'instances', ARGV[3], 'stripPrefix', ARGV[4],
  'release', version, 'state', 'active', 'createdAt', now, 'updatedAt', now)
rcall('SADD', KEYS[2], name)
rcall('HSET', KEYS[3], path, name)
rcall('ZADD', KEYS[7], 0, path)
appendEvent(KEYS[6], ARGV[6], 'kind', 'app-created', 'service', name, 'release', version)
return version
