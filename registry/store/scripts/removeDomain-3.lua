--[[
  Takes a domain from the app that owns it.

  Input:
    KEYS[1] domain → its record (hash of JSON: app, path, createdAt)
    KEYS[2] set of the app's domains
    KEYS[3] event stream

    ARGV[1] app name
    ARGV[2] domain (lowercase ASCII)
    ARGV[3] event stream max length (approximate)

  Output:
    1
    -18 the app has no such domain
]]
local rcall = redis.call
--- @include "appendEvent"
local app, domain = ARGV[1], ARGV[2]
local known = rcall('HGET', KEYS[1], domain)
if not known or cjson.decode(known).app ~= app then
  return -18
end
rcall('HDEL', KEYS[1], domain)
rcall('SREM', KEYS[2], domain)
appendEvent(KEYS[3], ARGV[3], 'kind', 'domain-removed', 'service', app, 'domain', domain)
return 1
