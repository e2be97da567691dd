-- Removes a driver that owes nothing (admin API).
-- KEYS: 1 pk:drv:{D}  2 pk:drv:{D}:unpaid  3 :overdue  4 :applied  5 :history  6 :defaults
--       7 :bills (optional; the audit stream pk:drv:{D}:audit is never deleted)
-- Returns {'ok', plates} | {'unknown'} | {'owes', unpaid_count, unpaid_amount}
local key = KEYS[1]
if redis.call('EXISTS', key) == 0 then
  return {'unknown'}
end
local n = tonumber(redis.call('HGET', key, 'unpaid_count') or '0')
if n > 0 then
  return {'owes', tostring(n), redis.call('HGET', key, 'unpaid_amount') or '0'}
end
local plates = redis.call('HGET', key, 'plates') or ''
redis.call('DEL', unpack(KEYS))
return {'ok', plates}
