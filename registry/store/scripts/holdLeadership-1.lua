--[[
  Takes or keeps a leadership lease (for the reconciler, the scaler): only one holder acts.

  Input:
    KEYS[1] lease key

    ARGV[1] holder id (unique per process)
    ARGV[2] lease length (ms)
    ARGV[3] 'hold' to take or renew it, 'drop' to give it up

  Output:
    1 the caller holds the lease (or dropped it), 0 another holder has it
]]
local rcall = redis.call
local holder = rcall('GET', KEYS[1])
if ARGV[3] == 'drop' then
  if holder == ARGV[1] then
    rcall('DEL', KEYS[1])
  end
  return 1
end
if holder and holder ~= ARGV[1] then
  return 0
end
rcall('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
