--[[
  Takes the dashboard's load-sampling turn for one period, when no registry took it yet: any
  number of registries sample, one of them per period.

  Input:
    KEYS[1] turn key

    ARGV[1] holder id (unique per process)
    ARGV[2] the turn's length (ms)

  Output:
    the moment the turn was taken (ms, Redis's clock), stamped on the samples so that two
    turns' samples are never closer than a turn; 0 when another registry holds it
]]
local rcall = redis.call
--- @include "redisNow"
if not rcall('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then
  return 0
end
return redisNow()
