--[[
  Removes a cron job of an app (berth cron:remove): its runs stay, as runs.

  Input:
    KEYS[1] cron job hash
    KEYS[2] the app's cron jobs (set)
    KEYS[3] every cron job (set)

    ARGV[1] id
    ARGV[2] app

  Output:
    1 removed, 0 no such job of this app
]]
local rcall = redis.call
if rcall('HGET', KEYS[1], 'app') ~= ARGV[2] then
  return 0
end
rcall('DEL', KEYS[1])
rcall('SREM', KEYS[2], ARGV[1])
rcall('SREM', KEYS[3], ARGV[1])
return 1
