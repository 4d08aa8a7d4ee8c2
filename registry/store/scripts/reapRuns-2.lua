--[[
  Runs whose lease expired (their machine or hoster died) end as lost: a run is never started
  twice, so it is not given to another hoster. Runs that no hoster claimed within the start
  timeout (every machine busy, or no hoster running) end as failed, reason not_started, so
  that neither `berth run` nor a cron job's runs wait for ever.

  Input:
    KEYS[1] run leases (sorted set, by lease expiry)
    KEYS[2] pending runs (sorted set, by creation time)

    ARGV[1] run key format (keys.ts: '*' where the id goes)
    ARGV[2] run output key format
    ARGV[3] most runs handled in one call (of each kind)
    ARGV[4] how long the finished run is kept (ms)
    ARGV[5] start timeout (ms): a pending run older than this ends; 0: never

  Output:
    { lost, notStarted }: the ids of the runs marked lost, and of those that never started
]]
local rcall = redis.call
--- @include "redisNow"
--- @include "keyFormat"
local runKey, outputKey = keyFormat(ARGV[1]), keyFormat(ARGV[2])
local now = redisNow()

local function finish(id, state, reason)
  local key = runKey(id)
  rcall('HSET', key, 'state', state, 'reason', reason, 'finishedAt', now)
  rcall('XADD', outputKey(id), '*', 's', 'exit', 'd', cjson.encode({state = state, exitCode = '', signal = '', reason = reason}))
  rcall('PEXPIRE', key, ARGV[4])
  rcall('PEXPIRE', outputKey(id), ARGV[4])
end

local lost = {}
for _, id in ipairs(rcall('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))) do
  rcall('ZREM', KEYS[1], id)
  local state = rcall('HGET', runKey(id), 'state')
  if state == 'starting' or state == 'running' then
    finish(id, 'lost', 'lease_expired')
    lost[#lost + 1] = id
  end
end

local notStarted = {}
local startTimeout = tonumber(ARGV[5])
if startTimeout > 0 then
  for _, id in ipairs(rcall('ZRANGEBYSCORE', KEYS[2], '-inf', now - startTimeout, 'LIMIT', 0, tonumber(ARGV[3]))) do
    rcall('ZREM', KEYS[2], id)
    -- Only a run still pending: one claimed meanwhile left the set in the same script as its claim.
    if rcall('HGET', runKey(id), 'state') == 'pending' then
      finish(id, 'failed', 'not_started')
      notStarted[#notStarted + 1] = id
    end
  end
end
return { lost, notStarted }
