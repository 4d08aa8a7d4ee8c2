--[[
  Included (`--- @include "pathConflict"`) by the scripts that give an app or an instance a
  path prefix. A prefix belongs to one app: a path conflicts when another app owns it, a
  prefix above it (`/a` over `/a/b`) or a prefix below it (`/a/b` under `/a`), since the
  routes would overlap either way. Needs `rcall`.

  pathConflict(paths, pathList, path, name)
    paths     hash path prefix → app name
    pathList  sorted set (all scores 0) of the same prefixes, to find those below `path` by range
    path      the prefix asked for
    name      the app asking (or the service an instance is registered for): its own prefixes never conflict

  Returns the owner and the prefix it owns of the first conflict, or nil.
  Costs O(depth of path + prefixes below it).
]]
local function pathConflict(paths, pathList, path, name)
  -- Apps made before the sorted set existed are only in the hash: rebuild it once from there.
  if rcall('ZCARD', pathList) ~= rcall('HLEN', paths) then
    rcall('DEL', pathList)
    for _, p in ipairs(rcall('HKEYS', paths)) do
      rcall('ZADD', pathList, 0, p)
    end
  end
  -- The path itself, then each prefix above it ('/a/b/c', '/a/b', '/a'); '/' is reserved.
  local above = path
  while above ~= nil and above ~= '' do
    local owner = rcall('HGET', paths, above)
    if owner and owner ~= name then
      return owner, above
    end
    above = string.match(above, '^(.*)/[^/]*$')
  end
  -- Prefixes below it: every member in ['<path>/', '<path>0'), as '0' follows '/' in byte order.
  for _, below in ipairs(rcall('ZRANGEBYLEX', pathList, '[' .. path .. '/', '(' .. path .. '0')) do
    local owner = rcall('HGET', paths, below)
    if owner and owner ~= name then
      return owner, below
    end
  end
  return nil
end
