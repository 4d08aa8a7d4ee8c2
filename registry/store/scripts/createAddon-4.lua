--[[
  Creates an add-on pinned to a machine (berth addons:create), with the first free port of
  the add-on port range on that machine. Refused when the name is taken or no port is free.

  Input:
    KEYS[1] add-on hash
    KEYS[2] every add-on's name (set)
    KEYS[3] the machine's add-ons (set)
    KEYS[4] the machine's add-on ports (hash port -> name)

    ARGV[1] name
    ARGV[2] id
    ARGV[3] kind (postgres, redis)
    ARGV[4] machine
    ARGV[5] host (the machine's address apps reach)
    ARGV[6] first port of the range
    ARGV[7] last port of the range
    ARGV[8] memory (MB)
    ARGV[9] password
    ARGV[10] created by

  Output:
    the port, or -21 (name taken), -22 (no free port)
]]
local rcall = redis.call
--- @include "redisNow"
--- @include "freeAddonPort"
if rcall('EXISTS', KEYS[1]) == 1 then
  return -21
end
local port = freeAddonPort(KEYS[4], ARGV[6], ARGV[7])
if port == nil then
  return -22
end
rcall('HSET', KEYS[1], 'name', ARGV[1], 'id', ARGV[2], 'addonKind', ARGV[3], 'machine', ARGV[4], 'host', ARGV[5], 'port', port,
  'memoryMb', ARGV[8], 'password', ARGV[9], 'createdBy', ARGV[10], 'createdAt', redisNow(), 'state', 'unclaimed', 'restarts', 0)
rcall('SADD', KEYS[2], ARGV[1])
rcall('SADD', KEYS[3], ARGV[1])
rcall('HSET', KEYS[4], tostring(port), ARGV[1])
return port
