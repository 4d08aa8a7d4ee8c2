--[[
  Included (`--- @include "appendEvent"`) by every script that changes state others follow.
  Needs `rcall`.

  appendEvent(events, maxLen, field, value, ...)
    events  the event stream
    maxLen  its approximate length cap
    ...     the event's fields and values ('kind', kind, 'instance', id, ...)
]]
local function appendEvent(events, maxLen, ...)
  rcall('XADD', events, 'MAXLEN', '~', maxLen, '*', ...)
end
