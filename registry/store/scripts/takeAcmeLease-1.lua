--[[
  Takes a balancer's lease on obtaining (or renewing) one domain's certificate, or extends its
  own: balancers take turns, one at a time per domain.

  Input:
    KEYS[1] the domain's ACME lease

    ARGV[1] holder (the balancer's id)
    ARGV[2] lease length (ms)

  Output:
    1 the holder holds it, 0 another balancer does
]]
local rcall = redis.call
local holder = rcall('GET', KEYS[1])
if holder and holder ~= ARGV[1] then
  return 0
end
rcall('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
