--[[
  The holder is leaving its machine: flags the instance so that the reconciler starts a
  replacement first and retires this one after (make before break). Holder-checked,
  idempotent.

  Input:
    KEYS[1] instance hash
    KEYS[2] event stream

    ARGV[1] machine name
    ARGV[2] claim epoch
    ARGV[3] service the caller expects the instance to belong to
    ARGV[4] event stream max length (approximate)

  Output:
    1
    -1 no such instance (of this service)
    -2 stale epoch: the caller's claim is gone
]]
local rcall = redis.call
--- @include "appendEvent"
local cur = rcall('HMGET', KEYS[1], 'id', 'service', 'state', 'machine', 'epoch', 'evacuating')
if not cur[1] or cur[2] ~= ARGV[3] then
  return -1
end
if cur[4] ~= ARGV[1] or cur[5] ~= ARGV[2] or cur[3] == 'unclaimed' then
  return -2
end
if cur[6] ~= '1' then
  rcall('HSET', KEYS[1], 'evacuating', '1')
  appendEvent(KEYS[2], ARGV[4], 'kind', 'evacuating', 'instance', cur[1], 'service', cur[2], 'epoch', cur[5], 'machine', cur[4])
end
return 1
