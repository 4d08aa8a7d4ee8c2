--[[
  Fires one tick of a cron job, once across every registry: the first scheduler to set the
  tick's key (NX) creates the tick's run (detached, of the release it read as current); any
  other finds the key set and does nothing.

  Input:
    KEYS[1] the tick's key (cron:<id>:tick:<ms>)
    KEYS[2] cron job hash
    KEYS[3] the new run's hash
    KEYS[4] the app's runs (sorted set)
    KEYS[5] pending runs (sorted set)

    ARGV[1] the tick (ms since 1970)
    ARGV[2] how long the tick's key is kept (ms): longer than any scheduler looks back
    ARGV[3] run id
    ARGV[4] app
    ARGV[5] release version
    ARGV[6] command (JSON array)
    ARGV[7] time limit (ms)
    ARGV[8] cron job id
    ARGV[9] runs of one app kept in its list

  Output:
    1 this call fired the tick, 0 another scheduler had (or the job was removed)
]]
local rcall = redis.call
--- @include "redisNow"
--- @include "newRun"
if rcall('EXISTS', KEYS[2]) == 0 then
  return 0
end
if not rcall('SET', KEYS[1], ARGV[3], 'NX', 'PX', ARGV[2]) then
  return 0
end
newRun(KEYS[3], KEYS[4], KEYS[5], redisNow(), ARGV[3], ARGV[4], ARGV[5], ARGV[6], '0', '1', ARGV[7], ARGV[8], ARGV[9])
rcall('HSET', KEYS[3], 'cronTick', ARGV[1])
rcall('HSET', KEYS[2], 'lastRun', ARGV[3], 'lastTickAt', ARGV[1])
return 1
