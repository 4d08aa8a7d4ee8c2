--[[
  The holder of a release task (the instance of type `release` that runs a release's release
  command) reports how it ended: the outcome is recorded on the release (once: a second report,
  from a run after a lost lease, changes nothing) and the task's record is removed, in one
  step, so the reconciler sees either a task still to run or its outcome, never neither.
  Refused unless the caller holds the current claim.

  Input:
    KEYS[1] instance hash
    KEYS[2] service's instance index (sorted set)
    KEYS[3] set of service names
    KEYS[4] unclaimed index (sorted set, all services)
    KEYS[5] service's unclaimed index (sorted set)
    KEYS[6] leases (sorted set by expiry)
    KEYS[7] event stream
    KEYS[8] app's releases (hash version → JSON)

    ARGV[1] service the caller expects the instance to belong to
    ARGV[2] machine name
    ARGV[3] claim epoch
    ARGV[4] release version the task belongs to
    ARGV[5] outcome: 'succeeded' or 'failed'
    ARGV[6] detail ('exit 0', 'exit 1' and the last lines, 'timed out after 600 s')
    ARGV[7] event stream max length (approximate)

  Output:
    1 recorded
    0 an outcome was recorded already (kept); the task is removed all the same
    -1 no such instance (of this service)
    -2 stale epoch: the caller's claim is gone
]]
local rcall = redis.call
--- @include "redisNow"
--- @include "appendEvent"
--- @include "removeInstance"
local instanceKey = KEYS[1]
local cur = rcall('HMGET', instanceKey, 'id', 'service', 'machine', 'epoch', 'release')
if not cur[1] or cur[2] ~= ARGV[1] then
  return -1
end
if cur[3] ~= ARGV[2] or cur[4] ~= ARGV[3] then
  return -2
end
local id, service = cur[1], cur[2]
local recorded = 0
local json = rcall('HGET', KEYS[8], ARGV[4])
if json then
  local release = cjson.decode(json)
  if release.releaseTask == nil then
    release.releaseTask = { status = ARGV[5], detail = ARGV[6], machine = ARGV[2], at = redisNow() }
    rcall('HSET', KEYS[8], ARGV[4], cjson.encode(release))
    recorded = 1
  end
end
local reason = 'stopped'
if ARGV[5] ~= 'succeeded' then
  reason = 'release_command_failed'
end
removeInstance(instanceKey, id, service, KEYS[2], KEYS[5], KEYS[3], KEYS[4], KEYS[6])
appendEvent(KEYS[7], ARGV[7], 'kind', 'unregistered', 'instance', id, 'service', service, 'epoch', cur[4], 'machine', cur[3], 'reason', reason, 'release', ARGV[4])
return recorded
