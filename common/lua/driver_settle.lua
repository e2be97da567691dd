-- A bill of the driver is settled: paid on time, paid late, or waived.  Paid on time and paid late
-- move the score by the policy; a waiver does not.  When no overdue bill is left, a suspension
-- for overdue bills ends (the privilege is restored).
-- KEYS: 1 pk:drv:{D}  2 pk:drv:{D}:unpaid  3 pk:drv:{D}:overdue  4 pk:drv:{D}:applied
--       5 pk:drv:{D}:history
-- ARGV: 1 bill  2 kind: paid|paid_late|waived  3 now  4 score delta  5 max score
-- Returns {'ok', snapshot, plates, restored 1|0} | {'unknown'} | {'again', snapshot, plates}
local key = KEYS[1]
if redis.call('EXISTS', key) == 0 then
  return {'unknown'}
end
if not once(KEYS[4], ARGV[1], 'settled') then
  local snap, plates = snapshot_plates(key)
  return {'again', snap, plates}
end
local amount = redis.call('HGET', KEYS[2], ARGV[1])
if amount then
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('HINCRBY', key, 'unpaid_count', -1)
  redis.call('HINCRBY', key, 'unpaid_amount', -tonumber(amount))
end
local delta = tonumber(ARGV[4])
if ARGV[2] == 'waived' then
  delta = 0
end
local score = clamp_score(key, delta, tonumber(ARGV[5]))
local restored = 0
if redis.call('SREM', KEYS[3], ARGV[1]) == 1 and redis.call('SCARD', KEYS[3]) == 0 and
   redis.call('HGET', key, 'suspended') == '1' and redis.call('HGET', key, 'suspend_cause') == 'overdue' then
  redis.call('HSET', key, 'suspended', '0')
  redis.call('HDEL', key, 'suspend_cause')
  restored = 1
end
credit_history(KEYS[5], {at = tonumber(ARGV[3]), cause = ARGV[2], bill = ARGV[1], delta = delta,
                         score = score, restored = restored == 1})
redis.call('HSET', key, 'updated_at', ARGV[3])
redis.call('HINCRBY', key, 'ver', 1)
local snap, plates = snapshot_plates(key)
return {'ok', snap, plates, restored}
