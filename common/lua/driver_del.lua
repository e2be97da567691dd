-- Removes a driver that owes nothing (admin API).
-- KEYS: 1 pk:drv:{D}  2 pk:drv:{D}:unpaid  3 :overdue  4 :applied  5 :history  6 :defaults
--       7 :bills  8 :audit (never deleted: the deletion is audited there, in the same step)
-- ARGV: 1 now  2 who (role US scope US name)
-- Returns {'ok', plates, audit id} | {'unknown'} | {'owes', unpaid_count, unpaid_amount}
local key = KEYS[1]
if redis.call('EXISTS', key) == 0 then
  return {'unknown'}
end
local n = tonumber(redis.call('HGET', key, 'unpaid_count') or '0')
if n > 0 then
  return {'owes', tostring(n), redis.call('HGET', key, 'unpaid_amount') or '0'}
end
local plates = redis.call('HGET', key, 'plates') or ''
local f = redis.call('HMGET', key, 'id', 'score', 'provider')
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7])
local id = audit(ARGV[2], tonumber(ARGV[1]), 'driver_delete', f[1] or '', '', '',
                 {'driver', f[1] or '', 'plates', plates, 'provider', f[3] or '',
                  'score', f[2] or ''})
return {'ok', plates, id}
