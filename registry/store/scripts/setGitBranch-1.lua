--[[
  Sets or clears the branch whose pushes deploy an app (registry/git); cleared, `main` and
  `master` deploy. Kept in the app's hash, so that deleting the app forgets it.

  Input:
    KEYS[1] app hash

    ARGV[1] branch name, or '' to go back to main/master

  Output:
    1
    -12 no such app (or it is being deleted)
]]
local rcall = redis.call
local cur = rcall('HMGET', KEYS[1], 'name', 'state')
if not cur[1] or cur[2] ~= 'active' then
  return -12
end
if ARGV[1] == '' then
  rcall('HDEL', KEYS[1], 'gitBranch')
else
  rcall('HSET', KEYS[1], 'gitBranch', ARGV[1])
end
return 1
