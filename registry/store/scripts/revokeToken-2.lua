--[[
  Forgets a named token: from the next request on, it is refused.

  Input:
    KEYS[1] tokens (hash: sha256 hex -> record JSON)
    KEYS[2] token names (hash: name -> sha256 hex)

    ARGV[1] name

  Output:
    the revoked token's record (JSON)
    -15 no token has this name
]]
local rcall = redis.call
local digest = rcall('HGET', KEYS[2], ARGV[1])
if not digest then
  return -15
end
local record = rcall('HGET', KEYS[1], digest)
rcall('HDEL', KEYS[2], ARGV[1])
rcall('HDEL', KEYS[1], digest)
return record or '{}'
