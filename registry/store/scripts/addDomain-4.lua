--[[
  Gives an app one of its own hosts, with the path prefix it answers on inside it. A domain
  belongs to one app: the check and the write are this one script, so two apps adding the
  same domain never both win. Adding a domain the app has already sets its path.

  Input:
    KEYS[1] app hash
    KEYS[2] domain → its record (hash of JSON: app, path, createdAt)
    KEYS[3] set of the app's domains
    KEYS[4] event stream

    ARGV[1] app name
    ARGV[2] domain (lowercase ASCII, checked by the caller)
    ARGV[3] path prefix inside the domain (checked by the caller)
    ARGV[4] event stream max length (approximate)

  Output:
    1 added, 0 the app had it (its path is now ARGV[3])
    -12 no such app (or it is being deleted)
    {-17, owner} another app owns the domain
]]
local rcall = redis.call
--- @include "redisNow"
--- @include "appendEvent"
local app, domain, path = ARGV[1], ARGV[2], ARGV[3]
local state = rcall('HGET', KEYS[1], 'state')
if not state or state == 'deleting' then
  return -12
end
local createdAt = redisNow()
local known = rcall('HGET', KEYS[2], domain)
if known then
  local record = cjson.decode(known)
  if record.app ~= app then
    return { -17, record.app }
  end
  createdAt = record.createdAt
end
rcall('HSET', KEYS[2], domain, cjson.encode({ app = app, path = path, createdAt = createdAt }))
rcall('SADD', KEYS[3], domain)
appendEvent(KEYS[4], ARGV[4], 'kind', 'domain-added', 'service', app, 'domain', domain)
if known then
  return 0
end
return 1
