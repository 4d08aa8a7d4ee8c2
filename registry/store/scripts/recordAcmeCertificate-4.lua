--[[
  Records what became of an ACME attempt on one domain (pending, a certificate, a failure),
  fenced by the lease: a balancer whose lease expired (and was taken by another) writes
  nothing. An operator's certificate is never overwritten.

  Input:
    KEYS[1] the domain's ACME lease
    KEYS[2] the domain's certificate (hash)
    KEYS[3] set of domains with a certificate hash
    KEYS[4] event stream

    ARGV[1] holder
    ARGV[2] domain
    ARGV[3] event stream max length (approximate)
    ARGV[4...] fields and values to set ('' as a value deletes the field)

  Output:
    1 written, 0 the lease is not the holder's
    -19 an operator's certificate holds the domain
]]
local rcall = redis.call
--- @include "appendEvent"
if rcall('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
if rcall('HGET', KEYS[2], 'source') == 'operator' then
  return -19
end
for i = 4, #ARGV, 2 do
  if ARGV[i + 1] == '' then
    rcall('HDEL', KEYS[2], ARGV[i])
  else
    rcall('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  end
end
rcall('SADD', KEYS[3], ARGV[2])
appendEvent(KEYS[4], ARGV[3], 'kind', 'certificate-changed', 'domain', ARGV[2])
return 1
