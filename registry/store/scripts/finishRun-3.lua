--[[
  The run's holder records how it ended, and the end on its output stream.

  Input:
    KEYS[1] run hash
    KEYS[2] run leases (sorted set)
    KEYS[3] the run's output stream

    ARGV[1] machine
    ARGV[2] epoch
    ARGV[3] state: exited, failed or stopped
    ARGV[4] exit code, or ''
    ARGV[5] signal, or ''
    ARGV[6] reason, or '' (a stop asked for gives its own)
    ARGV[7] how long the finished run is kept (ms)

  Output:
    1 recorded, 0 the claim is not this holder's any more
]]
local rcall = redis.call
--- @include "redisNow"
local run = rcall('HMGET', KEYS[1], 'machine', 'epoch', 'state', 'id', 'stopReason')
if run[1] ~= ARGV[1] or run[2] ~= ARGV[2] or (run[3] ~= 'starting' and run[3] ~= 'running') then
  return 0
end
local reason = ARGV[6]
if ARGV[3] == 'stopped' and reason == '' and run[5] then
  reason = run[5]
end
rcall('HSET', KEYS[1], 'state', ARGV[3], 'exitCode', ARGV[4], 'signal', ARGV[5], 'reason', reason, 'finishedAt', redisNow())
rcall('HDEL', KEYS[1], 'leaseExpiry')
rcall('ZREM', KEYS[2], run[4])
rcall('XADD', KEYS[3], '*', 's', 'exit', 'd', cjson.encode({state = ARGV[3], exitCode = ARGV[4], signal = ARGV[5], reason = reason}))
rcall('PEXPIRE', KEYS[1], ARGV[7])
rcall('PEXPIRE', KEYS[3], ARGV[7])
return 1
