--[[
  Records how a scheduled backup of an add-on went (shown by addons:info), only on the add-on
  it was taken of (the id the scheduler read: not a re-created one of the same name).

  Input:
    KEYS[1] add-on hash

    ARGV[1] name
    ARGV[2] the add-on's id
    ARGV[3] when it was tried (ms)
    ARGV[4] the backup's id ('' when it failed)
    ARGV[5] why it failed ('' when it did not)

  Output:
    1, or 0 (the add-on is gone or another now)
]]
local rcall = redis.call
if rcall('HGET', KEYS[1], 'id') ~= ARGV[2] then
  return 0
end
rcall('HSET', KEYS[1], 'scheduledAt', ARGV[3], 'scheduledError', ARGV[5])
if ARGV[4] ~= '' then
  rcall('HSET', KEYS[1], 'scheduledBackup', ARGV[4])
end
return 1
