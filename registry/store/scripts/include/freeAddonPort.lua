--[[
  Included (`--- @include "freeAddonPort"`) by the scripts that give an add-on a port on a
  machine (createAddon, moveAddon). Needs `rcall`.

  freeAddonPort(ports, first, last)  the lowest port of first..last that the machine's
              add-on ports hash `ports` (port -> add-on name) does not hold, or nil.
]]
local function freeAddonPort(ports, first, last)
  for p = tonumber(first), tonumber(last) do
    if rcall('HEXISTS', ports, tostring(p)) == 0 then
      return p
    end
  end
  return nil
end
