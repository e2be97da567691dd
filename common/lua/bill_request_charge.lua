-- A person asks for a charge now (a driver paying a failed, overdue or defaulted bill).  Never while
-- a charge is in flight or a deduction accepted: a second one could succeed too.
-- KEYS: 1 bill record  2 history  3 due  (4 pk:{L}:audit)
-- ARGV: 1 seq  2 now  3 cause  4 who (role US scope US name; absent or '' : no audit entry)
--       5 the audit entry's action (charge, pay)
-- Returns {'ok', status, audit id or ''} | {'unknown'} | {'not_due', status}
local f = redis.call('HMGET', KEYS[1], 'status')
local status = f[1]
if not status then
  return {'unknown'}
end
if status == 'paid' or status == 'paid_late' or status == 'waived' or status == 'refunded' or
   status == 'charging' or status == 'accepted' or status == 'alert' or status == 'reassigned' or
   status == 'merged' or status == 'void' then
  return {'not_due', status}
end
redis.call('HSET', KEYS[1], 'charge_requested', '1')
redis.call('HDEL', KEYS[1], 'next_at')
redis.call('ZADD', KEYS[3], tonumber(ARGV[2]), ARGV[1])
redis.call('RPUSH', KEYS[2], cjson.encode({at = tonumber(ARGV[2]), from = status, to = status,
                                           cause = ARGV[3]}))
local f2 = redis.call('HMGET', KEYS[1], 'bill', 'lot', 'driver')
local id = audit(ARGV[4], tonumber(ARGV[2]), ARGV[5] or 'charge', f2[1] or '', f2[2] or '',
                 ARGV[3], {'driver', f2[3] or '', 'status', status})
return {'ok', status, id}
