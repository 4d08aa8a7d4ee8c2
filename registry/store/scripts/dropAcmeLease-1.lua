--[[
  Gives up a balancer's lease on one domain's certificate, if it is still the holder's.

  Input:
    KEYS[1] the domain's ACME lease

    ARGV[1] holder

  Output:
    1 released, 0 it was not the holder's (expired, or taken by another)
]]
local rcall = redis.call
if rcall('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
rcall('DEL', KEYS[1])
return 1
