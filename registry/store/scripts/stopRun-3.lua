--[[
  Asks a run to stop: a pending one ends at once; a claimed one is flagged, and its holder
  stops the command at its next renewal.

  Input:
    KEYS[1] run hash
    KEYS[2] pending runs (sorted set)
    KEYS[3] the run's output stream

    ARGV[1] reason (e.g. client_gone, stopped)
    ARGV[2] how long the finished run is kept (ms)

  Output:
    'missing', 'stopped' (it had not started), 'stopping' (its holder will stop it), or the
    state it already ended in
]]
local rcall = redis.call
--- @include "redisNow"
local state = rcall('HGET', KEYS[1], 'state')
if not state then
  return 'missing'
end
if state == 'pending' then
  rcall('ZREM', KEYS[2], rcall('HGET', KEYS[1], 'id'))
  rcall('HSET', KEYS[1], 'state', 'stopped', 'reason', ARGV[1], 'finishedAt', redisNow())
  rcall('XADD', KEYS[3], '*', 's', 'exit', 'd', cjson.encode({state = 'stopped', exitCode = '', signal = '', reason = ARGV[1]}))
  rcall('PEXPIRE', KEYS[1], ARGV[2])
  rcall('PEXPIRE', KEYS[3], ARGV[2])
  return 'stopped'
end
if state == 'starting' or state == 'running' then
  rcall('HSET', KEYS[1], 'stopRequested', '1', 'stopReason', ARGV[1])
  return 'stopping'
end
return state
