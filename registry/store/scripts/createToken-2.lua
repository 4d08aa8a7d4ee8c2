--[[
  Records a new API token under a name no other token has. Only the token's sha256 is kept.

  Input:
    KEYS[1] tokens (hash: sha256 hex -> record JSON)
    KEYS[2] token names (hash: name -> sha256 hex)

    ARGV[1] name
    ARGV[2] sha256 hex of the token
    ARGV[3] record (JSON: name, app, readOnly, createdAt, createdBy)

  Output:
    1 recorded
    -14 a token with this name exists
]]
local rcall = redis.call
if rcall('HSETNX', KEYS[2], ARGV[1], ARGV[2]) == 0 then
  return -14
end
rcall('HSET', KEYS[1], ARGV[2], ARGV[3])
return 1
