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
if rcall('EXISTS', KEYS[1]) == 1 then
  return 0
end
local now = redisNow()
rcall('HSET', KEYS[1], 'id', ARGV[1], 'app', ARGV[2], 'release', ARGV[3], 'command', ARGV[4],
  'interactive', ARGV[5], 'detached', ARGV[6], 'timeoutMs', ARGV[7], 'cron', ARGV[8],
  'state', 'pending', 'createdAt', now)
rcall('ZADD', KEYS[2], now, ARGV[1])
rcall('ZADD', KEYS[3], now, ARGV[1])
local keep = tonumber(ARGV[9])
local count = rcall('ZCARD', KEYS[2])
if count > keep then
  rcall('ZREMRANGEBYRANK', KEYS[2], 0, count - keep - 1)
end
return now
