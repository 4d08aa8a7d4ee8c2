--[[
  Removes an add-on's record (berth addons:destroy, confirmed by its caller), refused while an
  app is attached; its machine's hoster then stops its server and removes its data (the trash).

  Input:
    KEYS[1] add-on hash
    KEYS[2] every add-on's name (set)
    KEYS[3] the machine's add-ons (set)
    KEYS[4] the machine's add-on ports (hash port -> name)
    KEYS[5] the machine's add-on trash (hash id -> kind)

    ARGV[1] name
    ARGV[2] machine

  Output:
    1, or -23 (no such add-on), -25 (an app is attached)
]]
local rcall = redis.call
local fields = rcall('HGETALL', KEYS[1])
if #fields == 0 or rcall('HGET', KEYS[1], 'machine') ~= ARGV[2] then
  return -23
end
local id, kind, port
for i = 1, #fields, 2 do
  local f = fields[i]
  if string.sub(f, 1, 7) == 'attach:' then
    return -25
  elseif f == 'id' then
    id = fields[i + 1]
  elseif f == 'addonKind' then
    kind = fields[i + 1]
  elseif f == 'port' then
    port = fields[i + 1]
  end
end
rcall('DEL', KEYS[1])
rcall('SREM', KEYS[2], ARGV[1])
rcall('SREM', KEYS[3], ARGV[1])
if rcall('HGET', KEYS[4], port) == ARGV[1] then
  rcall('HDEL', KEYS[4], port)
end
rcall('HSET', KEYS[5], id, kind)
return 1
