--[[
  Forgets that an app uses an add-on (berth addons:detach); the caller then unsets the
  variable in a new release.

  Input:
    KEYS[1] add-on hash
    KEYS[2] the app's attached variables (hash variable -> add-on name)

    ARGV[1] name (of the add-on)
    ARGV[2] app

  Output:
    the variable it was attached as, or -23 (no such add-on), -24 (not attached to the app)
]]
local rcall = redis.call
if rcall('EXISTS', KEYS[1]) == 0 then
  return -23
end
local variable = rcall('HGET', KEYS[1], 'attach:' .. ARGV[2])
if not variable then
  return -24
end
rcall('HDEL', KEYS[1], 'attach:' .. ARGV[2])
if rcall('HGET', KEYS[2], variable) == ARGV[1] then
  rcall('HDEL', KEYS[2], variable)
end
return variable
