--[[
  Reports that a claimed instance runs (its health check passed): it becomes routable.
  Refused unless the caller holds the current claim (machine and epoch match).

  Input:
    KEYS[1] instance hash
    KEYS[2] event stream

    ARGV[1] machine name
    ARGV[2] claim epoch
    ARGV[3] process id
    ARGV[4] event stream max length (approximate)
    ARGV[5] service the caller expects the instance to belong to
    ARGV[6] how many times the holder restarted it in place under this claim ('' to leave it as it is)

  Output:
    the instance as a flat field/value list (only the pid and restarts change when it already ran: idempotent)
  A running instance restarted in place (a new pid or count) is announced `running` again, so
  that followers (the proxies' pids, the dashboard) see its new process.
    -1 no such instance (of this service)
    -2 stale epoch: the caller's claim is gone
    -4 the instance is in a state that cannot become running (draining or stopping)
]]
local rcall = redis.call
--- @include "redisNow"
--- @include "appendEvent"
local instanceKey = KEYS[1]
local cur = rcall('HMGET', instanceKey, 'id', 'service', 'state', 'machine', 'epoch', 'pid', 'restarts')
if not cur[1] or cur[2] ~= ARGV[5] then
  return -1
end
if cur[4] ~= ARGV[1] or cur[5] ~= ARGV[2] then
  return -2
end
if cur[3] ~= 'running' and cur[3] ~= 'claimed' then
  return -4
end
-- Written only past the holder check above: a stale hoster's count never lands on a newer claim.
local restarts = ARGV[6]
if restarts ~= '' then
  rcall('HSET', instanceKey, 'restarts', restarts)
end
if cur[3] == 'running' then
  -- Restarted by its hoster: same claim, a new process. A repeated report changes nothing.
  if cur[6] ~= ARGV[3] or (restarts ~= '' and (cur[7] or '0') ~= restarts) then
    rcall('HSET', instanceKey, 'pid', ARGV[3], 'updatedAt', redisNow())
    appendEvent(KEYS[2], ARGV[4], 'kind', 'running', 'instance', cur[1], 'service', cur[2], 'epoch', cur[5], 'machine', cur[4])
  end
  return rcall('HGETALL', instanceKey)
end

local now = redisNow()
rcall('HSET', instanceKey, 'state', 'running', 'pid', ARGV[3], 'updatedAt', now)
appendEvent(KEYS[2], ARGV[4], 'kind', 'running', 'instance', cur[1], 'service', cur[2], 'epoch', cur[5], 'machine', cur[4])

return rcall('HGETALL', instanceKey)
