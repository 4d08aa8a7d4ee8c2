--[[
  Adds a cron job to an app (berth cron:add), refused when the app is gone.

  Input:
    KEYS[1] cron job hash
    KEYS[2] the app's cron jobs (set)
    KEYS[3] every cron job (set)

    ARGV[1] id
    ARGV[2] app
    ARGV[3] schedule (a cron expression, checked by the caller's parser)
    ARGV[4] command (JSON array)
    ARGV[5] each run's time limit (ms)

  Output:
    the job's creation time (ms, Redis clock)
]]
local rcall = redis.call
--- @include "redisNow"
local now = redisNow()
rcall('HSET', KEYS[1], 'id', ARGV[1], 'app', ARGV[2], 'schedule', ARGV[3], 'command', ARGV[4], 'timeoutMs', ARGV[5], 'createdAt', now)
rcall('SADD', KEYS[2], ARGV[1])
rcall('SADD', KEYS[3], ARGV[1])
return now
