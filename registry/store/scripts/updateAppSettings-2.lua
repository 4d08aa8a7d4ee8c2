--[[
  Changes an app's settings that need no new release: instances wanted (web's, and other
  process types' in the formation), prefix stripping.

  Input:
    KEYS[1] app hash
    KEYS[2] event stream

    ARGV[1] app name
    ARGV[2] instances wanted ('' to keep)
    ARGV[3] strip prefix ('1', '0', or '' to keep)
    ARGV[4] event stream max length (approximate)
    ARGV[5] counts of process types other than web (JSON object, merged into the app's formation; '' to keep)

  Output:
    1
    -12 no such app (or it is being deleted)
    -9 instances of a type were given but that type scales automatically (its policy decides
       them), then the type
]]
local rcall = redis.call
--- @include "redisNow"
--- @include "appendEvent"
local cur = rcall('HMGET', KEYS[1], 'name', 'state', 'autoscale', 'autoscaleByType')
if not cur[1] or cur[2] ~= 'active' then
  return -12
end
if ARGV[2] ~= '' and cur[3] then
  return { -9, 'web' }
end
if ARGV[5] ~= '' and cur[4] then
  local policed = cjson.decode(cur[4])
  for name in pairs(cjson.decode(ARGV[5])) do
    if policed[name] ~= nil then
      return { -9, name }
    end
  end
end
local now = redisNow()
if ARGV[2] ~= '' then
  rcall('HSET', KEYS[1], 'instances', ARGV[2])
end
if ARGV[3] ~= '' then
  rcall('HSET', KEYS[1], 'stripPrefix', ARGV[3])
end
if ARGV[5] ~= '' then
  local formation = {}
  local old = rcall('HGET', KEYS[1], 'formation')
  if old then
    formation = cjson.decode(old)
  end
  for name, count in pairs(cjson.decode(ARGV[5])) do
    formation[name] = count
  end
  rcall('HSET', KEYS[1], 'formation', cjson.encode(formation))
end
rcall('HSET', KEYS[1], 'updatedAt', now)
appendEvent(KEYS[2], ARGV[4], 'kind', 'app-updated', 'service', ARGV[1])
return 1
