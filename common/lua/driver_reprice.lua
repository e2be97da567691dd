-- A bill of the driver whose amount a correction changed (a visit merged with the next, or split:
-- docs/api.md): what the driver owes follows.  A bill not applied yet is applied with its new
-- amount (driver_bill's HSETNX then keeps it); a settled one is left alone.
-- KEYS: 1 pk:drv:{D}  2 pk:drv:{D}:unpaid  3 pk:drv:{D}:applied  4 pk:drv:{D}:bills
-- ARGV: 1 bill id  2 amount  3 now
-- Returns {'ok', snapshot, plates, changed 1|0} | {'unknown'}
local key = KEYS[1]
if redis.call('EXISTS', key) == 0 then
  return {'unknown'}
end
if redis.call('SISMEMBER', KEYS[3], ARGV[1] .. ':settled') == 1 then
  return {'ok', snapshot(key), redis.call('HGET', key, 'plates') or '', 0}
end
redis.call('ZADD', KEYS[4], 'NX', tonumber(ARGV[3]), ARGV[1])
local old = redis.call('HGET', KEYS[2], ARGV[1])
local new = tonumber(ARGV[2])
if old and tonumber(old) == new then
  return {'ok', snapshot(key), redis.call('HGET', key, 'plates') or '', 0}
end
if old then
  redis.call('HINCRBY', key, 'unpaid_amount', new - tonumber(old))
else
  redis.call('HINCRBY', key, 'unpaid_count', 1)
  redis.call('HINCRBY', key, 'unpaid_amount', new)
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HSET', key, 'updated_at', ARGV[3])
redis.call('HINCRBY', key, 'ver', 1)
return {'ok', snapshot(key), redis.call('HGET', key, 'plates') or '', 1}
