--[[
  Records that an app uses an add-on through a variable (berth addons:attach): the caller
  then sets the variable in a new release. An app attached already is attached again under
  the new variable (the old one is replied, for the caller to unset).

  Input:
    KEYS[1] add-on hash
    KEYS[2] the app's attached variables (hash variable -> add-on name)

    ARGV[1] name (of the add-on)
    ARGV[2] app
    ARGV[3] variable

  Output:
    {1, the variable it had before or ''}, or -23 (no such add-on),
    {-27, other add-on} (the app has another add-on as that variable)
]]
local rcall = redis.call
if rcall('EXISTS', KEYS[1]) == 0 then
  return -23
end
local other = rcall('HGET', KEYS[2], ARGV[3])
if other and other ~= ARGV[1] then
  return {-27, other}
end
local before = rcall('HGET', KEYS[1], 'attach:' .. ARGV[2]) or ''
if before ~= '' and before ~= ARGV[3] then
  rcall('HDEL', KEYS[2], before)
end
rcall('HSET', KEYS[1], 'attach:' .. ARGV[2], ARGV[3])
rcall('HSET', KEYS[2], ARGV[3], ARGV[1])
return {1, before}
