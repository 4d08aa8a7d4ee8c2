--[[
  Deletes a stored bundle: its facts, its data and its entry in the bundles index, together,
  so that no reader ever sees facts without data.

  Input:
    KEYS[1] bundle (hash of facts)
    KEYS[2] bundle data (hash of chunk index -> bytes)
    KEYS[3] bundles (sorted set of digests by stored at)

    ARGV[1] digest

  Output:
    1 deleted
    0 there was no such bundle
]]
local rcall = redis.call
local existed = rcall('DEL', KEYS[1], KEYS[2])
local indexed = rcall('ZREM', KEYS[3], ARGV[1])
if existed > 0 or indexed > 0 then
  return 1
end
return 0
