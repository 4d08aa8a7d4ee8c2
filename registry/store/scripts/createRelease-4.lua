--[[
  Adds a release to an app and makes it the app's current release (the reconciler then rolls
  it out). Optimistic: refused when the app's current release is no longer the one the
  caller based the new release on, so two concurrent config changes never lose one.

  Input:
    KEYS[1] app hash
    KEYS[2] app's releases (hash version → JSON)
    KEYS[3] app's release counter
    KEYS[4] event stream

    ARGV[1] app name
    ARGV[2] release (JSON object: bundle, env, command, requirements, healthCheck, description, createdBy)
    ARGV[3] the current release version the caller expects ('' for any)
    ARGV[4] event stream max length (approximate)

  Output:
    the new release's version
    -12 no such app (or it is being deleted)
    -6 the app's current release changed meanwhile: read it again and retry
]]
local rcall = redis.call
--- @include "redisNow"
--- @include "appendEvent"
local cur = rcall('HMGET', KEYS[1], 'name', 'state', 'release')
if not cur[1] or cur[2] ~= 'active' then
  return -12
end
if ARGV[3] ~= '' and cur[3] ~= ARGV[3] then
  return -6
end
local now = redisNow()
local version = rcall('INCR', KEYS[3])
local release = cjson.decode(ARGV[2])
release.version = version
release.createdAt = now
release.status = 'deploying'
rcall('HSET', KEYS[2], version, cjson.encode(release))
rcall('HSET', KEYS[1], 'release', version, 'updatedAt', now)
appendEvent(KEYS[4], ARGV[4], 'kind', 'release-created', 'service', ARGV[1], 'release', version)
return version
