--[[
  Stores a verified upload as a bundle, or drops it when the bundle is already stored (two
  clients may upload the same bundle at once: the first to commit wins, the other is a no-op).
  The upload's data hash becomes the bundle's by RENAME, so no byte is copied.

  Input:
    KEYS[1] upload (hash of chunk index -> bytes, with an expiry)
    KEYS[2] bundle data (hash of chunk index -> bytes)
    KEYS[3] bundle (hash of facts)
    KEYS[4] bundles (sorted set of digests by stored at)

    ARGV[1] digest
    ARGV[2] size in bytes
    ARGV[3] number of chunks the uploader wrote

  Output:
    1 stored
    0 already stored: the upload was dropped
    -16 the upload is gone or incomplete (Redis restarted or evicted it): it was dropped
]]
local rcall = redis.call
--- @include "redisNow"
local uploadKey = KEYS[1]
local dataKey = KEYS[2]
local bundleKey = KEYS[3]
local digest = ARGV[1]
local chunks = tonumber(ARGV[3])

if rcall('EXISTS', bundleKey) == 1 then
  rcall('DEL', uploadKey)
  return 0
end
if rcall('HLEN', uploadKey) ~= chunks then
  rcall('DEL', uploadKey)
  return -16
end

rcall('RENAME', uploadKey, dataKey)
rcall('PERSIST', dataKey)
local now = redisNow()
rcall('HSET', bundleKey, 'digest', digest, 'size', ARGV[2], 'chunks', chunks, 'storedAt', now)
rcall('ZADD', KEYS[4], now, digest)
return 1
