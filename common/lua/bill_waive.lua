-- Staff waive a bill (the charge was wrong): it is no longer owed, whatever state it was in.
-- KEYS: 1 bill record  2 history  3 due  4 outbox   ARGV: 1 seq  2 now  3 reason
-- Returns {'ok', driver, bill} | {'unknown'} | {'not_owed', status}
local f = redis.call('HMGET', KEYS[1], 'status', 'driver', 'bill', 'plate', 'amount', 'currency',
                     'lot')
local status = f[1]
if not status then
  return {'unknown'}
end
if status == 'paid' or status == 'paid_late' or status == 'refunded' or status == 'waived' or
   status == 'charging' or status == 'accepted' then
  return {'not_owed', status}
end
redis.call('HSET', KEYS[1], 'status', 'waived', 'waived_at', ARGV[2], 'waive_reason', ARGV[3])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('RPUSH', KEYS[2], cjson.encode({at = tonumber(ARGV[2]), from = status, to = 'waived',
                                           cause = ARGV[3]}))
redis.call('XADD', KEYS[4], 'MAXLEN', '~', '100000', '*', 'kind', 'waived', 'bill', f[3] or '',
           'driver', f[2] or '', 'plate', f[4] or '', 'amount', f[5] or '0',
           'currency', f[6] or '', 'lot', f[7] or '', 'at', ARGV[2])
return {'ok', f[2] or '', f[3] or ''}
