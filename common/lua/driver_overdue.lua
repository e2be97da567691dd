-- A bill of the driver is overdue: with the policy's suspend_when_overdue, leave-first is
-- suspended until every overdue bill is paid.
-- KEYS: 1 pk:drv:{D}  2 pk:drv:{D}:overdue  3 pk:drv:{D}:applied  4 pk:drv:{D}:history
-- ARGV: 1 bill  2 now  3 suspend 1|0
-- Returns {'ok', snapshot, plates, suspended now 1|0} | {'unknown'} | {'again', snapshot, plates}
local key = KEYS[1]
if redis.call('EXISTS', key) == 0 then
  return {'unknown'}
end
if not once(KEYS[3], ARGV[1], 'overdue') then
  return {'again', snapshot(key), redis.call('HGET', key, 'plates') or ''}
end
redis.call('SADD', KEYS[2], ARGV[1])
local newly = 0
if ARGV[3] == '1' and redis.call('HGET', key, 'suspended') ~= '1' then
  redis.call('HSET', key, 'suspended', '1', 'suspend_cause', 'overdue')
  newly = 1
end
credit_history(KEYS[4], {at = tonumber(ARGV[2]), cause = 'overdue', bill = ARGV[1], delta = 0,
                         suspended = ARGV[3] == '1'})
redis.call('HSET', key, 'updated_at', ARGV[2])
redis.call('HINCRBY', key, 'ver', 1)
return {'ok', snapshot(key), redis.call('HGET', key, 'plates') or '', newly}
