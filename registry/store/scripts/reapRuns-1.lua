--[[
  Runs whose lease expired (their machine or hoster died) end as lost: a run is never started
  twice, so it is not given to another hoster.

  Input:
    KEYS[1] run leases (sorted set, by lease expiry)

    ARGV[1] run key format (keys.ts: '*' where the id goes)
    ARGV[2] run output key format
    ARGV[3] most runs handled in one call
    ARGV[4] how long the finished run is kept (ms)

  Output:
    the ids of the runs marked lost
]]
local rcall = redis.call
--- @include "redisNow"
--- @include "keyFormat"
local runKey, outputKey = keyFormat(ARGV[1]), keyFormat(ARGV[2])
local now = redisNow()
local expired = rcall('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
local lost = {}
for _, id in ipairs(expired) do
  rcall('ZREM', KEYS[1], id)
  local key = runKey(id)
  local state = rcall('HGET', key, 'state')
  if state == 'starting' or state == 'running' then
    rcall('HSET', key, 'state', 'lost', 'reason', 'lease_expired', 'finishedAt', now)
    rcall('XADD', outputKey(id), '*', 's', 'exit', 'd', cjson.encode({state = 'lost', exitCode = '', signal = '', reason = 'lease_expired'}))
    rcall('PEXPIRE', key, ARGV[4])
    rcall('PEXPIRE', outputKey(id), ARGV[4])
    lost[#lost + 1] = id
  end
end
return lost
