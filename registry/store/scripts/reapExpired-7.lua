--[[
  Handles instances whose lease expired (their holder stopped renewing). One that was being
  retired (draining or stopping) is removed: its holder is gone, and so is its process. Any
  other returns to unclaimed, for another machine to claim with a higher epoch. Safe to run
  from every registry process at once: each expired lease is handled exactly once.

  Unless the evidence says the control plane itself was away, not the holders. Then nothing
  is expired for one full lease (a hold), so that every holder that can reach Redis again
  renews first:
  - a gap: no reaper ran for more than half a lease (or two of its intervals, if longer): Redis
    was away, frozen or restarted from its files, or every registry was down; a holder that
    renews every quarter lease may have been kept from it long enough to see its lease end. Or
    Redis's clock went back;
  - a silence: more than a fraction of the machines holding claims (those that send their
    presence, markPresent-2.lua) have not been heard from for silentMs.
  A hold lasts one lease after the last tick that saw its cause. During a hold a lease whose
  holder told its control-plane grace is still expired once it ended more than that grace
  ago: by then the holder has stopped its app by itself.

  Input:
    KEYS[1] leases (sorted set by expiry)
    KEYS[2] unclaimed index (sorted set, all services)
    KEYS[3] event stream
    KEYS[4] reaper state (hash: lastTick, holdUntil, holdReason, and the settings below, which
            hosters read)
    KEYS[5] presence (sorted set machine → when last heard)
    KEYS[6] presence grace (hash machine → '<grace ms> <lease ms>')
    KEYS[7] set of service names

    ARGV[1] instance key format (registry/store/keys.ts formats: '*' where the name goes)
    ARGV[2] most instances to handle in this call
    ARGV[3] event stream max length (approximate)
    ARGV[4] lease length (ms): how long a hold lasts; half of it is the gap that starts one
    ARGV[5] silentMs: a machine not heard from for this long is silent
    ARGV[6] fraction: more than this share of machines silent at once starts a hold
    ARGV[7] how often reapers run (ms), for hosters to read
    ARGV[8] service instance index key format
    ARGV[9] service unclaimed index key format

  Output:
    { reaped, hold }
    reaped: a list of {id, service, machine, epoch, outcome} for each, outcome 'unclaimed' or 'removed'
    hold: {ms left of the hold (0: none), what started it ('gap', 'silence' or ''), and when it
           started: the gap since the tick before (ms), silent machines, machines; leases held
           in this call; 1 if this call started the hold}
]]
local rcall = redis.call
--- @include "removeInstance"
--- @include "keyFormat"
--- @include "redisNow"
--- @include "appendEvent"
local instanceKeyOf, serviceInstancesOf, serviceUnclaimedOf = keyFormat(ARGV[1]), keyFormat(ARGV[8]), keyFormat(ARGV[9])
local leaseMs = tonumber(ARGV[4])
local silentMs = tonumber(ARGV[5])
local fraction = tonumber(ARGV[6])

local now = redisNow()
local state = rcall('HMGET', KEYS[4], 'lastTick', 'holdUntil', 'holdReason', 'holdGap', 'holdSilent', 'holdMachines')
local lastTick = tonumber(state[1])
local holdUntil = tonumber(state[2]) or 0
-- What started the hold under way (kept for its whole length, so that every reaper can say it).
local reason, causeGap, causeSilent, causeMachines = state[3] or '', tonumber(state[4]) or 0, tonumber(state[5]) or 0, tonumber(state[6]) or 0
local started = 0

-- A machine's grace and lease length as it told them (markPresent-2.lua), or nil.
local function told(machine)
  local v = rcall('HGET', KEYS[6], machine)
  if not v then
    return nil, nil
  end
  local grace, lease = string.match(v, '^(%d+) (%d+)$')
  return tonumber(grace), tonumber(lease)
end

local gap = 0
local fired = nil
local gapLimit = math.max(leaseMs / 2, 2 * tonumber(ARGV[7]))
if lastTick then
  gap = now - lastTick
  if gap > gapLimit or gap < 0 then
    fired = 'gap'
  end
  -- A hold until a time on the clock from before it went back would last as long as the jump.
  if gap < 0 then
    holdUntil = 0
  end
end

-- A machine silent for longer than its lease, its grace and one more lease holds nothing that
-- can matter: its leases have ended and its apps have stopped, held or not. Forget it.
local silent = 0
local total = rcall('ZCARD', KEYS[5])
local quiet = rcall('ZRANGEBYSCORE', KEYS[5], '-inf', '(' .. (now - silentMs), 'WITHSCORES')
for i = 1, #quiet, 2 do
  local machine, heard = quiet[i], tonumber(quiet[i + 1])
  local grace, lease = told(machine)
  if heard < now - (lease or leaseMs) - (grace or 0) - leaseMs then
    rcall('ZREM', KEYS[5], machine)
    rcall('HDEL', KEYS[6], machine)
    total = total - 1
  else
    silent = silent + 1
  end
end
if not fired and total > 0 and silent > fraction * total then
  fired = 'silence'
end
if fired then
  if now >= holdUntil then
    started = 1
    reason, causeGap, causeSilent, causeMachines = fired, gap, silent, total
  end
  if now + leaseMs > holdUntil then
    holdUntil = now + leaseMs
  end
end

local holding = now < holdUntil
if not holding then
  reason, causeGap, causeSilent, causeMachines = '', 0, 0, 0
end
rcall('HSET', KEYS[4], 'lastTick', now, 'holdUntil', holdUntil, 'holdReason', reason, 'holdGap', causeGap,
  'holdSilent', causeSilent, 'holdMachines', causeMachines,
  'leaseMs', leaseMs, 'silentMs', silentMs, 'fraction', ARGV[6], 'intervalMs', ARGV[7])

local expired = rcall('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
local reaped = {}
local held = 0

for _, id in ipairs(expired) do
  local instanceKey = instanceKeyOf(id)
  local cur = rcall('HMGET', instanceKey, 'service', 'state', 'machine', 'epoch', 'seq', 'leaseUntil')
  local leaseUntil = tonumber(cur[6])
  local keep = false
  if holding and cur[1] and cur[2] ~= 'unclaimed' and leaseUntil and leaseUntil <= now then
    -- Held, unless its holder's grace has run out too (then its app is stopped).
    local grace = cur[3] and told(cur[3])
    keep = not (grace and grace > 0 and now >= leaseUntil + grace)
  end
  if keep then
    held = held + 1
  else
    rcall('ZREM', KEYS[1], id)
  end
  if not keep and cur[1] and cur[2] ~= 'unclaimed' and leaseUntil and leaseUntil <= now then
    local service = cur[1]
    local outcome
    if cur[2] == 'draining' or cur[2] == 'stopping' then
      removeInstance(instanceKey, id, service, serviceInstancesOf(service), serviceUnclaimedOf(service), KEYS[7], KEYS[2], KEYS[1])
      outcome = 'removed'
      appendEvent(KEYS[3], ARGV[3], 'kind', 'unregistered', 'instance', id, 'service', service, 'epoch', cur[4], 'machine', cur[3],
        'reason', 'lease_expired')
    else
      rcall('HSET', instanceKey, 'state', 'unclaimed', 'reason', 'lease_expired', 'updatedAt', now)
      rcall('HDEL', instanceKey, 'machine', 'host', 'port', 'pid', 'leaseUntil', 'claimAttributes')
      rcall('ZADD', KEYS[2], cur[5], id)
      rcall('ZADD', serviceUnclaimedOf(service), cur[5], id)
      outcome = 'unclaimed'
      appendEvent(KEYS[3], ARGV[3], 'kind', 'expired', 'instance', id, 'service', service, 'epoch', cur[4], 'machine', cur[3],
        'reason', 'lease_expired')
    end
    -- Expired outside a hold: its machine is cut off or gone, and no longer counts among the
    -- machines whose silence would mean the control plane is away.
    if not holding and cur[3] then
      rcall('ZREM', KEYS[5], cur[3])
      rcall('HDEL', KEYS[6], cur[3])
    end
    reaped[#reaped + 1] = { id, service, cur[3], cur[4], outcome }
  end
end

local left = 0
if holding then
  left = holdUntil - now
end
return { reaped, { left, reason, causeGap, causeSilent, causeMachines, held, started } }
