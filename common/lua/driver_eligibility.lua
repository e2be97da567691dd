-- The payment provider's verdict on the driver (WeChat Pay's parking state: NORMAL, or BLOCKED with
-- its reason), which exits read through the plate copies: anything but NORMAL holds the driver
-- with provider_blocked.  Verdicts may arrive out of order (a registration retried after a later
-- state-change notification): one older than the verdict in force is dropped.
-- KEYS: 1 pk:drv:{D}  2 pk:drv:{D}:history
-- ARGV: 1 eligibility ("NORMAL", "BLOCKED:OVERDUE", ...)  2 as of (unix s)  3 now  4 cause
-- Returns {'ok', snapshot, plates, changed 1|0} | {'stale', snapshot, plates} | {'unknown'}
local key = KEYS[1]
if redis.call('EXISTS', key) == 0 then
  return {'unknown'}
end
local plates = redis.call('HGET', key, 'plates') or ''
if tonumber(ARGV[2]) < tonumber(redis.call('HGET', key, 'eligibility_at') or '0') then
  return {'stale', snapshot(key), plates}
end
redis.call('HSET', key, 'eligibility_at', ARGV[2])
local was = redis.call('HGET', key, 'eligibility') or ''
if was == ARGV[1] then
  return {'ok', snapshot(key), plates, 0}
end
redis.call('HSET', key, 'eligibility', ARGV[1], 'updated_at', ARGV[3])
redis.call('HINCRBY', key, 'ver', 1)
credit_history(KEYS[2], {at = tonumber(ARGV[3]), cause = 'eligibility', from = was,
                         to = ARGV[1], why = ARGV[4]})
return {'ok', snapshot(key), plates, 1}
