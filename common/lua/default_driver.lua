-- A driver for the defaults detail (docs/api.md): the record, unpaid bills, credit history (the
-- latest 200 changes) and the driver's bills, newest first (at most 100).
-- KEYS: 1 pk:drv:{D}  2 pk:drv:{D}:unpaid  3 pk:drv:{D}:history  4 pk:drv:{D}:bills
--       5 pk:drv:{D}:overdue
-- Returns {'ok', flat record, flat unpaid, history, {bill, applied at, ...}, overdue bills}
--       | {'unknown'}
local d = redis.call('HGETALL', KEYS[1])
if #d == 0 then
  return {'unknown'}
end
return {'ok', d, redis.call('HGETALL', KEYS[2]), redis.call('LRANGE', KEYS[3], -200, -1),
        redis.call('ZREVRANGE', KEYS[4], 0, 99, 'WITHSCORES'), redis.call('SMEMBERS', KEYS[5])}
