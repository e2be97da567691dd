-- A bill of the driver defaulted.  The first default in the policy's rolling window (12 months)
-- is a warning without penalty (the city's first-violation-no-penalty rule; the money is still
-- owed); later ones cost the policy's score_default.
-- KEYS: 1 pk:drv:{D}  2 pk:drv:{D}:defaults  3 pk:drv:{D}:applied  4 pk:drv:{D}:history
-- ARGV: 1 bill  2 now  3 window (s)  4 score delta (<= 0)  5 max score
-- Returns {'ok', snapshot, plates, warning 1|0} | {'unknown'} | {'again', snapshot, plates}
local key = KEYS[1]
if redis.call('EXISTS', key) == 0 then
  return {'unknown'}
end
if not once(KEYS[3], ARGV[1], 'default') then
  return {'again', snapshot(key), redis.call('HGET', key, 'plates') or ''}
end
local now = tonumber(ARGV[2])
local earlier = redis.call('ZCOUNT', KEYS[2], now - tonumber(ARGV[3]), now)
redis.call('ZADD', KEYS[2], now, ARGV[1])
local warning, delta = 0, tonumber(ARGV[4])
if earlier == 0 then
  warning, delta = 1, 0
end
local score = clamp_score(key, delta, tonumber(ARGV[5]))
credit_history(KEYS[4], {at = now, cause = warning == 1 and 'default_warning' or 'default',
                         bill = ARGV[1], delta = delta, score = score})
redis.call('HSET', key, 'updated_at', ARGV[2])
redis.call('HINCRBY', key, 'ver', 1)
return {'ok', snapshot(key), redis.call('HGET', key, 'plates') or '', warning}
