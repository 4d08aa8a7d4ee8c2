--[[
  A hoster's sign of life, sent a few times a second while it holds claims. From these the
  reaper tells whether many machines went silent at once (the control plane is then the
  likelier fault than the machines, and it holds lease expiries: see reapExpired-7.lua). It
  also records the machine's control-plane grace (how long after its lease its apps may keep
  running at the most, so that a held lease is expired once that has passed) and its lease
  length (how long after it was last heard from it may still hold a claim).

  Input:
    KEYS[1] presence (sorted set machine → when last heard, ms, Redis clock)
    KEYS[2] presence grace (hash machine → '<grace ms> <lease ms>')

    ARGV[1] machine name
    ARGV[2] its grace (ms; 0: it stops its apps whenever it cannot renew in time)
    ARGV[3] '1' while it holds claims; '0' when it holds none (it is then taken out: a machine
            without claims has nothing for the reaper to hold)
    ARGV[4] its lease length (ms)

  Output:
    {now (ms, Redis clock), how many machines hold claims now (this one included, if it does)}:
    a hoster that knows of fewer reads them again, so that it never counts on a partial list
]]
local rcall = redis.call
--- @include "redisNow"
local now = redisNow()
if ARGV[3] == '1' then
  rcall('ZADD', KEYS[1], now, ARGV[1])
  rcall('HSET', KEYS[2], ARGV[1], ARGV[2] .. ' ' .. ARGV[4])
else
  rcall('ZREM', KEYS[1], ARGV[1])
  rcall('HDEL', KEYS[2], ARGV[1])
end
return { now, rcall('ZCARD', KEYS[1]) }
