--[[
  Starts deleting an app: the reconciler retires its instances, then removes it.
  Idempotent.

  Input:
    KEYS[1] app hash
    KEYS[2] event stream

    ARGV[1] app name
    ARGV[2] event stream max length (approximate)

  Output:
    1
    -1 no such app
]]
local rcall = redis.call
local cur = rcall('HMGET', KEYS[1], 'name', 'state')
if not cur[1] then
  return -1
end
if cur[2] ~= 'deleting' then
  local t = rcall('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  rcall('HSET', KEYS[1], 'state', 'deleting', 'updatedAt', now)
  rcall('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'kind', 'app-deleting', 'service', ARGV[1])
end
return 1
