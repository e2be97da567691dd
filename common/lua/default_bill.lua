-- A bill for the defaults detail (docs/api.md): its record and history, and each notification
-- noted in its record (`reminders`: outbox entry id:kind ...) with how far the reminder sender
-- (billing's consumer group `reminders` on the lot's outbox) got with it: 'queued' (not read
-- yet), 'sending' (read, not acknowledged: being delivered or retried), 'sent' (acknowledged).
-- KEYS: 1 bill record  2 history  3 pk:{L}:outbox
-- Returns {'ok', flat record, history, {id, kind, state, ...}} | {'unknown'}
local rec = redis.call('HGETALL', KEYS[1])
if #rec == 0 then
  return {'unknown'}
end
local noted = redis.call('HGET', KEYS[1], 'reminders') or ''
local delivered = nil
local ok, groups = pcall(redis.call, 'XINFO', 'GROUPS', KEYS[3])
if ok then
  for _, g in ipairs(groups) do
    local h = {}
    for i = 1, #g, 2 do
      h[g[i]] = g[i + 1]
    end
    if h['name'] == 'reminders' then
      delivered = h['last-delivered-id']
    end
  end
end
-- Stream ids compare as (milliseconds, sequence).
local function id_le(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  if not am or not bm then
    return false
  end
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am < bm or (am == bm and as <= bs)
end
local reminders = {}
for id, kind in string.gmatch(noted, '([%d%-]+):(%S+)') do
  local state = 'queued'
  if delivered and id_le(id, delivered) then
    state = 'sent'
    local pok, p = pcall(redis.call, 'XPENDING', KEYS[3], 'reminders', id, id, 1)
    if pok and #p > 0 then
      state = 'sending'
    end
  end
  reminders[#reminders + 1] = id
  reminders[#reminders + 1] = kind
  reminders[#reminders + 1] = state
end
return {'ok', rec, redis.call('LRANGE', KEYS[2], 0, -1), reminders}
