--[[
  Included (`--- @include "addonHolder"`) by the scripts an add-on's lease holder calls. Needs
  `rcall`.

  addonHolderFailure(key, machine, epoch)  nil when `machine` holds the add-on at `key` with
              the claim `epoch`; else -23 (no such add-on) or -2 (stale epoch: its claim is
              another's now), for the script to return.
]]
local function addonHolderFailure(key, machine, epoch)
  local m, e = unpack(rcall('HMGET', key, 'machine', 'epoch'))
  if not m then
    return -23
  end
  if m ~= machine or e ~= epoch then
    return -2
  end
  return nil
end
