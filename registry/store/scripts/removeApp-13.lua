--[[
  Removes a deleted app once none of its instances remain: its record, releases, logs and
  what the scaler remembered of it (an app made later under the same name starts afresh),
  and frees its path prefix and its domains; its add-ons forget it (they stay, with their
  data, for other apps or a restore: only addons:destroy removes one).

  Input:
    KEYS[1] app hash
    KEYS[2] set of app names
    KEYS[3] path prefix → app name (hash)
    KEYS[4] app's releases (hash version → JSON)
    KEYS[5] app's release counter
    KEYS[6] app's log stream
    KEYS[7] event stream
    KEYS[8] scaler memory (hash app name → JSON)
    KEYS[9] sorted set of the path prefixes of KEYS[3]
    KEYS[10] the app's instance index (sorted set; must be empty)
    KEYS[11] domain → its record (hash of JSON: app, path, createdAt)
    KEYS[12] set of the app's domains
    KEYS[13] the app's attached variables (hash variable -> add-on name)

    ARGV[1] app name
    ARGV[2] event stream max length (approximate)
    ARGV[3] key format of an add-on's hash (keys.ts, filled by keyFormat)

  Output:
    1
    -12 no such app
    0 not removed: the app is not being deleted, or still has instances
]]
local rcall = redis.call
--- @include "appendEvent"
--- @include "keyFormat"
local cur = rcall('HMGET', KEYS[1], 'name', 'state', 'path')
if not cur[1] then
  return -12
end
if cur[2] ~= 'deleting' or rcall('ZCARD', KEYS[10]) > 0 then
  return 0
end
if rcall('HGET', KEYS[3], cur[3]) == ARGV[1] then
  rcall('HDEL', KEYS[3], cur[3])
  rcall('ZREM', KEYS[9], cur[3])
end
for _, domain in ipairs(rcall('SMEMBERS', KEYS[12])) do
  local record = rcall('HGET', KEYS[11], domain)
  if record and cjson.decode(record).app == ARGV[1] then
    rcall('HDEL', KEYS[11], domain)
  end
end
local addonKey = keyFormat(ARGV[3])
for _, addon in ipairs(rcall('HVALS', KEYS[13])) do
  rcall('HDEL', addonKey(addon), 'attach:' .. ARGV[1])
end
rcall('DEL', KEYS[1], KEYS[4], KEYS[5], KEYS[6], KEYS[12], KEYS[13])
rcall('SREM', KEYS[2], ARGV[1])
rcall('HDEL', KEYS[8], ARGV[1])
appendEvent(KEYS[7], ARGV[2], 'kind', 'app-deleted', 'service', ARGV[1])
return 1
