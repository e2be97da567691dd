-- The provider's answer to a refund taken with bill_step.
-- KEYS: 1 bill record  2 history  3 due  4 outbox  5 the bill's lot-day (money_day, prelude)
-- ARGV: 1 seq  2 now  3 outcome: refunded|transient|alert  4 refund reference  5 code
--       6 next try time (transient)  7 refund number
-- Returns {'refunded', status, refunded total} | {'retry'} | {'alert'} | {'stale'}
--       | {'day', the bill's day}: nothing changed; ask again with that day's key
local rec, now = KEYS[1], tonumber(ARGV[2])
local f = redis.call('HMGET', rec, 'status', 'refund_requested', 'refunded_amount', 'amount',
                     'refunds', 'bill', 'driver', 'plate', 'currency', 'lot')
if not f[2] or tostring(tonumber(f[5] or '0') + 1) ~= ARGV[7] then
  return {'stale'}
end
local function hist(to, cause)
  redis.call('RPUSH', KEYS[2], cjson.encode({at = now, from = f[1], to = to, cause = cause,
                                             ref = ARGV[4], code = ARGV[5]}))
end
if ARGV[3] == 'transient' then
  redis.call('HDEL', rec, 'refunding_until')
  redis.call('ZADD', KEYS[3], tonumber(ARGV[6]), ARGV[1])
  hist(f[1], 'refund: provider unavailable, retrying')
  return {'retry'}
end
if ARGV[3] == 'alert' then
  redis.call('HDEL', rec, 'refund_requested', 'refunding_until')
  redis.call('ZREM', KEYS[3], ARGV[1])
  hist(f[1], 'refund refused, needs a person: ' .. ARGV[5])
  return {'alert'}
end
local money = money_day(rec, KEYS[5])
if money ~= 'ok' and money ~= 'none' then
  return {'day', money}
end
if money == 'ok' then
  -- From the bucket of the payment (paid, paid_late) to refunded.
  money_refund(KEYS[5], rec, tonumber(f[2]))
end
local total = tonumber(f[3] or '0') + tonumber(f[2])
redis.call('HSET', rec, 'status', 'refunded', 'refunded_amount', tostring(total),
           'refunds', ARGV[7], 'refunded_at', tostring(now))
redis.call('HDEL', rec, 'refund_requested', 'refunding_until')
redis.call('ZREM', KEYS[3], ARGV[1])
hist('refunded', 'refunded ' .. f[2] .. (total < tonumber(f[4] or '0') and ' (in part)' or ''))
redis.call('XADD', KEYS[4], 'MAXLEN', '~', '100000', '*', 'kind', 'refunded', 'bill', f[6] or '',
           'driver', f[7] or '', 'plate', f[8] or '', 'amount', f[2], 'currency', f[9] or '',
           'lot', f[10] or '', 'at', ARGV[2])
return {'refunded', 'refunded', tostring(total)}
