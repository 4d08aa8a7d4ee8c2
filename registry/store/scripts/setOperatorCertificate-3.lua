--[[
  Sets an operator's certificate for a domain (it takes precedence over ACME), or removes it
  (no fields): ACME then obtains one again.

  Input:
    KEYS[1] the domain's certificate (hash)
    KEYS[2] set of domains with a certificate hash
    KEYS[3] event stream

    ARGV[1] domain
    ARGV[2] event stream max length (approximate)
    ARGV[3...] fields and values of the certificate (none: remove it)

  Output:
    1
    -20 removing, and the domain has no operator certificate
]]
local rcall = redis.call
--- @include "appendEvent"
if #ARGV < 3 then
  if rcall('HGET', KEYS[1], 'source') ~= 'operator' then
    return -20
  end
  rcall('DEL', KEYS[1])
  rcall('SREM', KEYS[2], ARGV[1])
else
  rcall('DEL', KEYS[1])
  rcall('HSET', KEYS[1], unpack(ARGV, 3))
  rcall('SADD', KEYS[2], ARGV[1])
end
appendEvent(KEYS[3], ARGV[2], 'kind', 'certificate-changed', 'domain', ARGV[1])
return 1
