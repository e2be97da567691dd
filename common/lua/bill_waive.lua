-- Staff waive a bill (the charge was wrong): it is no longer owed, whatever state it was in.
-- KEYS: 1 bill record  2 history  3 due  4 outbox  5 the bill's lot-day (pk:{L}:day:<day>, or
--       pk:{L}:day:- when not known: money_day in the prelude)
-- ARGV: 1 seq  2 now  3 reason  4 who (role US scope US name; '' : no audit entry)
-- KEYS may also hold pk:{L}:arrears, pk:{L}:arrears:info and pk:{L}:audit (default_lib.lua): the
-- bill leaves the arrears index, and the waiver is audited in the same step.
-- Returns {'ok', driver, bill} | {'unknown'} | {'not_owed', status}
--       | {'day', the bill's day}: nothing changed; ask again with that day's key
local f = redis.call('HMGET', KEYS[1], 'status', 'driver', 'bill', 'plate', 'amount', 'currency',
                     'lot')
local status = f[1]
if not status then
  return {'unknown'}
end
if status == 'paid' or status == 'paid_late' or status == 'refunded' or status == 'waived' or
   status == 'charging' or status == 'accepted' or status == 'reassigned' or
   status == 'merged' or status == 'void' then
  return {'not_owed', status}
end
local money = money_day(KEYS[1], KEYS[5])
if money ~= 'ok' and money ~= 'none' then
  return {'day', money}
end
redis.call('HSET', KEYS[1], 'status', 'waived', 'waived_at', ARGV[2], 'waive_reason', ARGV[3])
if money == 'ok' then
  money_move(KEYS[5], KEYS[1], 'waived')
end
redis.call('ZREM', KEYS[3], ARGV[1])
arrears_move(KEYS[1], ARGV[1], 'settled', false, tonumber(ARGV[2]))
redis.call('RPUSH', KEYS[2], cjson.encode({at = tonumber(ARGV[2]), from = status, to = 'waived',
                                           cause = ARGV[3]}))
local ob = redis.call('XADD', KEYS[4], 'MAXLEN', '~', '100000', '*', 'kind', 'waived',
                      'bill', f[3] or '', 'driver', f[2] or '', 'plate', f[4] or '',
                      'amount', f[5] or '0', 'currency', f[6] or '', 'lot', f[7] or '',
                      'at', ARGV[2])
reminder_noted(KEYS[1], ob, 'waived')
local id = audit(ARGV[4], tonumber(ARGV[2]), 'waive', f[3] or '', f[7] or '', ARGV[3],
                 {'driver', f[2] or '', 'amount', f[5] or '0', 'from', status})
return {'ok', f[2] or '', f[3] or '', id}
