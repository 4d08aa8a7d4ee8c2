--[[
  Records a machine's heartbeat and its current facts (proxy address, CPUs, memory, load).
  The first heartbeat of a machine appends a `machine-joined` event.

  Input:
    KEYS[1] machine hash
    KEYS[2] machines (sorted set by last heartbeat)
    KEYS[3] event stream

    ARGV[1] machine name
    ARGV[2] facts (JSON object)
    ARGV[3] event stream max length (approximate)

  Output:
    the heartbeat time (ms, Redis clock)
]]
local rcall = redis.call
--- @include "redisNow"
--- @include "appendEvent"
local now = redisNow()
local isNew = rcall('EXISTS', KEYS[1]) == 0

rcall('HSET', KEYS[1], 'name', ARGV[1], 'facts', ARGV[2], 'heartbeatAt', now)
if isNew then
  rcall('HSET', KEYS[1], 'joinedAt', now)
end
rcall('ZADD', KEYS[2], now, ARGV[1])
if isNew then
  appendEvent(KEYS[3], ARGV[3], 'kind', 'machine-joined', 'machine', ARGV[1])
end
return now
