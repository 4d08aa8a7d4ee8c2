--[[
  Sets an operator's certificate for a domain (it takes precedence over ACME), or removes
  every operator certificate of the domain (no key type): ACME then obtains one again.
  A domain holds at most one certificate per key type: the first (unprefixed fields) is the
  ECDSA one when there is one, an RSA one beside it has its fields prefixed `second.`.
  A certificate of a key type the domain has replaces that one; ACME's is dropped.

  Input:
    KEYS[1] the domain's certificate (hash)
    KEYS[2] set of domains with a certificate hash
    KEYS[3] event stream

    ARGV[1] domain
    ARGV[2] event stream max length (approximate)
    ARGV[3] key type of the certificate: 'ecdsa' or 'rsa' ('' removes)
    ARGV[4...] fields and values of the certificate (cert, key, issuer, notBefore, notAfter, serial)

  Output:
    1
    -20 removing, and the domain has no operator certificate
]]
local rcall = redis.call
--- @include "appendEvent"
local domain = ARGV[1]
local keyType = ARGV[3]
local FIELDS = { 'cert', 'key', 'issuer', 'notBefore', 'notAfter', 'serial', 'keyType' }
if keyType == '' then
  if rcall('HGET', KEYS[1], 'source') ~= 'operator' then
    return -20
  end
  rcall('DEL', KEYS[1])
  rcall('SREM', KEYS[2], domain)
else
  if rcall('HGET', KEYS[1], 'source') ~= 'operator' then
    rcall('DEL', KEYS[1])
  end
  local hasFirst = rcall('HEXISTS', KEYS[1], 'cert') == 1
  -- Certificates from before RSA was served have no keyType: they are ECDSA.
  local firstType = rcall('HGET', KEYS[1], 'keyType') or 'ecdsa'
  local prefix = ''
  if hasFirst and firstType ~= keyType then
    if keyType == 'ecdsa' then
      for _, field in ipairs(FIELDS) do
        local value = rcall('HGET', KEYS[1], field)
        if value then
          rcall('HSET', KEYS[1], 'second.' .. field, value)
        end
      end
    else
      prefix = 'second.'
    end
  end
  rcall('HSET', KEYS[1], 'source', 'operator', 'state', 'issued', prefix .. 'keyType', keyType)
  for i = 4, #ARGV, 2 do
    rcall('HSET', KEYS[1], prefix .. ARGV[i], ARGV[i + 1])
  end
  rcall('SADD', KEYS[2], domain)
end
appendEvent(KEYS[3], ARGV[2], 'kind', 'certificate-changed', 'domain', domain)
return 1
