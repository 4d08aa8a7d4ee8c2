--[[
  Included (`--- @include "keyFormat"`) by the scripts that reach keys they learn the name of
  inside Lua. A format is the key as registry/store/keys.ts builds it with '*' where the name
  goes (KEY_NAME_SLOT; no prefix can hold one), so every key name is made in keys.ts.

  keyFormat(format)  a function of a name that returns its key
]]
local function keyFormat(format)
  local slot = string.find(format, '*', 1, true)
  local before, after = string.sub(format, 1, slot - 1), string.sub(format, slot + 1)
  return function(name)
    return before .. name .. after
  end
end
