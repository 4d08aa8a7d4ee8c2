--[[
  Records how a release's rollout ended. 'active': it serves, and the release that served
  before it (or an older one still deploying) becomes 'superseded'. 'failed': it crashed or never became healthy; when it is the
  app's current release, the app's current release goes back to `fallback` (the one still
  serving), so that the next change builds on what works.

  Input:
    KEYS[1] app hash
    KEYS[2] app's releases (hash version → JSON)
    KEYS[3] event stream

    ARGV[1] app name
    ARGV[2] release version
    ARGV[3] status: 'active' or 'failed'
    ARGV[4] reason ('' for none)
    ARGV[5] fallback version for a failed current release ('' for none)
    ARGV[6] event stream max length (approximate)

  Output:
    1 changed, 0 already in that status
    -12 no such app or release
]]
local rcall = redis.call
--- @include "appendEvent"
local version, status = ARGV[2], ARGV[3]
local current = rcall('HGET', KEYS[1], 'release')
local json = rcall('HGET', KEYS[2], version)
if not current or not json then
  return -12
end
local release = cjson.decode(json)
if release.status == status then
  return 0
end
release.status = status
if ARGV[4] ~= '' then
  release.reason = ARGV[4]
end
rcall('HSET', KEYS[2], version, cjson.encode(release))

if status == 'active' then
  local all = rcall('HGETALL', KEYS[2])
  for i = 1, #all, 2 do
    if all[i] ~= version then
      local other = cjson.decode(all[i + 1])
      -- An older release still deploying when this one went live never will: superseded too.
      if other.status == 'active' or (other.status == 'deploying' and other.version < release.version) then
        other.status = 'superseded'
        rcall('HSET', KEYS[2], all[i], cjson.encode(other))
      end
    end
  end
elseif status == 'failed' and current == version and ARGV[5] ~= '' then
  rcall('HSET', KEYS[1], 'release', ARGV[5])
  -- The release put back in use is the live one again.
  local fallbackJson = rcall('HGET', KEYS[2], ARGV[5])
  if fallbackJson then
    local fallback = cjson.decode(fallbackJson)
    fallback.status = 'active'
    rcall('HSET', KEYS[2], ARGV[5], cjson.encode(fallback))
  end
end
appendEvent(KEYS[3], ARGV[6], 'kind', 'release-' .. status, 'service', ARGV[1], 'release', version, 'reason', ARGV[4])
return 1
