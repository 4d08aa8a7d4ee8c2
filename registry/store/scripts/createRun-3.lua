--[[
  Records a one-off run of an app's release (berth run, or a cron tick), waiting for a hoster.

  Input:
    KEYS[1] run hash
    KEYS[2] the app's runs (sorted set, by creation time)
    KEYS[3] pending runs (sorted set, by creation time)

    ARGV[1] run id
    ARGV[2] app
    ARGV[3] release version
    ARGV[4] command (JSON array of argv)
    ARGV[5] '1' interactive (a PTY), '0' not
    ARGV[6] '1' detached (runs on when its CLI goes away), '0' not
    ARGV[7] time limit (ms)
    ARGV[8] cron job id, or ''
    ARGV[9] runs of one app kept in its list

  Output:
    the run's creation time (ms, Redis clock), or 0 when the id exists
]]
local rcall = redis.call
--- @include "redisNow"
--- @include "newRun"
if rcall('EXISTS', KEYS[1]) == 1 then
  return 0
end
local now = redisNow()
newRun(KEYS[1], KEYS[2], KEYS[3], now, ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9])
return now
