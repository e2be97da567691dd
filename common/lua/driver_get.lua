-- KEYS: 1 pk:drv:{D}  2 pk:drv:{D}:unpaid     Returns {'ok', flat record, flat unpaid} | {'unknown'}
local d = redis.call('HGETALL', KEYS[1])
if #d == 0 then
  return {'unknown'}
end
return {'ok', d, redis.call('HGETALL', KEYS[2])}
