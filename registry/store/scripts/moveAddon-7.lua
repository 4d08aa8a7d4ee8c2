--[[
  Re-pins an add-on to another machine (berth addons:restore NAME BACKUP --to-machine M), the
  way out when its machine died: fenced on the add-on's id and machine as the caller read them,
  it gets a new id (its data folder, its user and its claims go by id: the new machine starts
  it with fresh data, and the old machine's hoster, should it return, finds it neither in its
  list nor claimable, and removes its old data as a destroyed add-on's), the first free port of
  the new machine, and no claim (epoch 0, no lease), for the new machine's hoster to take.
  Refused unless the new machine's hoster was heard from within the silence allowed.

  Input:
    KEYS[1] add-on hash
    KEYS[2] the old machine's add-ons (set)
    KEYS[3] the old machine's add-on ports (hash port -> name)
    KEYS[4] the old machine's add-on trash (hash id -> kind)
    KEYS[5] the new machine's add-ons (set)
    KEYS[6] the new machine's add-on ports (hash port -> name)
    KEYS[7] the new machine's hash

    ARGV[1] name
    ARGV[2] the add-on's id, as the caller read it
    ARGV[3] its machine, as the caller read it
    ARGV[4] the new machine
    ARGV[5] the new id
    ARGV[6] the new host (the new machine's address apps reach)
    ARGV[7] first port of the range
    ARGV[8] last port of the range
    ARGV[9] silence allowed (ms): the new machine's last heartbeat no older than this

  Output:
    the new port, or -23 (no such add-on), -28 (moved or re-created since it was read),
    -29 (the new machine not heard from lately), -22 (no free port there)
]]
local rcall = redis.call
--- @include "redisNow"
--- @include "freeAddonPort"
local id, machine, kind, port = unpack(rcall('HMGET', KEYS[1], 'id', 'machine', 'addonKind', 'port'))
if not id then
  return -23
end
if id ~= ARGV[2] or machine ~= ARGV[3] then
  return -28
end
local heartbeatAt = rcall('HGET', KEYS[7], 'heartbeatAt')
if not heartbeatAt or redisNow() - tonumber(heartbeatAt) > tonumber(ARGV[9]) then
  return -29
end
local newPort = freeAddonPort(KEYS[6], ARGV[7], ARGV[8])
if newPort == nil then
  return -22
end
rcall('SREM', KEYS[2], ARGV[1])
if rcall('HGET', KEYS[3], port) == ARGV[1] then
  rcall('HDEL', KEYS[3], port)
end
rcall('HSET', KEYS[4], id, kind)
rcall('SADD', KEYS[5], ARGV[1])
rcall('HSET', KEYS[6], tostring(newPort), ARGV[1])
rcall('HDEL', KEYS[1], 'usageBytes', 'usageConnections', 'usageMemoryBytes', 'usageAt')
rcall('HSET', KEYS[1], 'id', ARGV[5], 'machine', ARGV[4], 'host', ARGV[6], 'port', newPort,
  'state', 'unclaimed', 'epoch', 0, 'leaseUntil', 0, 'pid', '', 'detail', '', 'restarts', 0)
return newPort
