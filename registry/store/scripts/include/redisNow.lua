--[[
  Included (`--- @include "redisNow"`) by every script that reads the clock. Needs `rcall`.

  redisNow()  now on Redis's own clock, in ms: leases and drains are measured with it, never
              with a client's clock.
]]
local function redisNow()
  local t = rcall('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
