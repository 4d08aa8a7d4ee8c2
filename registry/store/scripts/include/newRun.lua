--[[
  Included (`--- @include "newRun"`) by the scripts that create a one-off run (createRun, and
  fireCronTick for a cron job's tick). Needs `rcall`.

  newRun(runKey, appRunsKey, pendingKey, now, id, app, release, command, interactive, detached,
         timeoutMs, cron, keep)
    writes the run, pending, into its app's list (trimmed to `keep`) and the pending set
]]
local function newRun(runKey, appRunsKey, pendingKey, now, id, app, release, command, interactive, detached, timeoutMs, cron, keep)
  rcall('HSET', runKey, 'id', id, 'app', app, 'release', release, 'command', command,
    'interactive', interactive, 'detached', detached, 'timeoutMs', timeoutMs, 'cron', cron,
    'state', 'pending', 'createdAt', now)
  rcall('ZADD', appRunsKey, now, id)
  rcall('ZADD', pendingKey, now, id)
  local count = rcall('ZCARD', appRunsKey)
  if count > tonumber(keep) then
    rcall('ZREMRANGEBYRANK', appRunsKey, 0, count - tonumber(keep) - 1)
  end
end
