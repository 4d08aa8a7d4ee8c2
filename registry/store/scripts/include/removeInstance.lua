--[[
  Included (`--- @include "removeInstance"`) by the scripts that remove an instance record:
  deletes its hash and takes it out of every index; a service left with no instance leaves
  the set of services. Needs `rcall`.

  removeInstance(instanceKey, id, service, serviceInstances, serviceUnclaimed, services, unclaimed, leases)
]]
local function removeInstance(instanceKey, id, service, serviceInstances, serviceUnclaimed, services, unclaimed, leases)
  rcall('DEL', instanceKey)
  rcall('ZREM', serviceInstances, id)
  rcall('ZREM', leases, id)
  rcall('ZREM', unclaimed, id)
  rcall('ZREM', serviceUnclaimed, id)
  if rcall('ZCARD', serviceInstances) == 0 then
    rcall('SREM', services, service)
  end
end
