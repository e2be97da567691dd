-- Staff ask for a refund of a paid bill, in full or in part (billing sends it to the provider).
-- KEYS: 1 bill record  2 history  3 due
-- ARGV: 1 seq  2 amount ('' : what is left)  3 now  4 reason
--       5 who (role US scope US name; absent or '' : no audit entry; KEYS then holds pk:{L}:audit)
-- Returns {'ok', amount, audit id or ''} | {'unknown'} | {'not_paid', status} | {'too_much', refundable}
--       | {'busy'}
local f = redis.call('HMGET', KEYS[1], 'status', 'amount', 'refunded_amount', 'refund_requested')
local status = f[1]
if not status then
  return {'unknown'}
end
if status ~= 'paid' and status ~= 'paid_late' and status ~= 'refunded' then
  return {'not_paid', status}
end
if f[4] then
  return {'busy'}
end
local left = tonumber(f[2] or '0') - tonumber(f[3] or '0')
local amount = ARGV[2] == '' and left or tonumber(ARGV[2])
if amount <= 0 or amount > left then
  return {'too_much', tostring(left)}
end
redis.call('HSET', KEYS[1], 'refund_requested', tostring(amount), 'refund_reason', ARGV[4])
redis.call('ZADD', KEYS[3], tonumber(ARGV[3]), ARGV[1])
redis.call('RPUSH', KEYS[2], cjson.encode({at = tonumber(ARGV[3]), from = status, to = status,
                                           cause = 'refund of ' .. amount .. ' requested: ' ..
                                                   ARGV[4]}))
local f2 = redis.call('HMGET', KEYS[1], 'bill', 'lot', 'driver')
local id = audit(ARGV[5], tonumber(ARGV[3]), 'refund', f2[1] or '', f2[2] or '', ARGV[4],
                 {'amount', tostring(amount), 'driver', f2[3] or ''})
return {'ok', tostring(amount), id}
