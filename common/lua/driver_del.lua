-- Removes a driver that owes nothing (admin API).
-- KEYS: 1 pk:drv:{D}  2 pk:drv:{D}:unpaid
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
redis.call('DEL', key, KEYS[2])
return {'ok', plates}
