--[[
  A hoster takes the lease of an add-on pinned to its machine, to run its server. Only that
  machine ever may: an add-on is stateful, its data is on that machine's disk. A lease that
  ended (the hoster died or was cut off) leaves the add-on to be taken again by a hoster of
  the same machine, never by another.

  Input:
    KEYS[1] add-on hash
    KEYS[2] the epoch counter

    ARGV[1] machine
    ARGV[2] lease (ms)
    ARGV[3] add-on id (the one the caller read: a re-created add-on of the same name is another)

  Output:
    {epoch, lease expiry}, or -23 (no such add-on on this machine), -26 (a live lease holds it)
]]
local rcall = redis.call
--- @include "redisNow"
local machine, id, leaseUntil = unpack(rcall('HMGET', KEYS[1], 'machine', 'id', 'leaseUntil'))
if machine ~= ARGV[1] or id ~= ARGV[3] then
  return -23
end
local now = redisNow()
if leaseUntil and tonumber(leaseUntil) > now then
  return -26
end
local epoch = rcall('INCR', KEYS[2])
local expiry = now + tonumber(ARGV[2])
rcall('HSET', KEYS[1], 'epoch', epoch, 'leaseUntil', expiry, 'state', 'starting', 'detail', '')
return {epoch, expiry}
