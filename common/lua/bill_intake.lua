-- A bill read from the settlement stream: schedule its first charge now and note it in its history
-- (once however often the stream entry is delivered).
-- KEYS: 1 bill record pk:{L}:s:<n>  2 history  3 due  4 outbox; and pk:{L}:arrears,
--       pk:{L}:arrears:info (default_lib.lua: the bill is owed from now, and counted)
-- ARGV: 1 seq  2 now  3 grace (s)  4 default after (s)
-- Returns {'ok', driver, bill id, amount, fresh 1|0} | {'unknown'}
local rec = KEYS[1]
if redis.call('EXISTS', rec) == 0 then
  return {'unknown'}
end
local f = redis.call('HMGET', rec, 'status', 'driver', 'bill', 'amount', 'exit', 'due_set',
                     'plate', 'currency', 'lot')
if f[6] then
  return {'ok', f[2] or '', f[3] or '', f[4] or '0', 0}
end
local exit_ts = tonumber(f[5]) or tonumber(ARGV[2])
redis.call('HSET', rec, 'due_set', '1', 'attempts', '0',
           'overdue_at', tostring(exit_ts + tonumber(ARGV[3])),
           'default_at', tostring(exit_ts + tonumber(ARGV[4])))
if f[1] == 'pending' then
  redis.call('ZADD', KEYS[3], tonumber(ARGV[2]), ARGV[1])
end
redis.call('RPUSH', KEYS[2], cjson.encode({at = tonumber(ARGV[2]), to = f[1], cause = 'queued'}))
arrears_intake(rec, ARGV[1], tonumber(ARGV[2]))
local ob = redis.call('XADD', KEYS[4], 'MAXLEN', '~', '100000', '*', 'kind', 'bill_created',
                      'bill', f[3] or '', 'driver', f[2] or '', 'plate', f[7] or '',
                      'amount', f[4] or '0', 'currency', f[8] or '', 'lot', f[9] or '',
                      'at', ARGV[2])
reminder_noted(rec, ob, 'bill_created')
return {'ok', f[2] or '', f[3] or '', f[4] or '0', 1}
