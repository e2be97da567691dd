-- Staff resolve a dispute.  upheld: the bill stays owed and its life resumes (charge, ageing) as
-- its times say; waived: the charge was wrong, the bill is no longer owed (as bill_waive).  The
-- change and its audit entry are one step.
-- KEYS: 1 bill record  2 history  3 due  4 outbox  5 the bill's lot-day (pk:{L}:day:<day>, or
--       pk:{L}:day:- when not known: money_day in the prelude)  6 pk:{L}:arrears
--       7 pk:{L}:arrears:info  8 pk:{L}:audit
-- ARGV: 1 seq  2 now  3 reason  4 who (role US scope US name)  5 outcome: upheld|waived
-- Returns {'ok', outcome, driver, audit id} | {'unknown'} | {'not_disputed', status}
--       | {'busy', status} | {'day', the bill's day}: nothing changed; ask again with its key
local rec, now, seq, outcome = KEYS[1], tonumber(ARGV[2]), ARGV[1], ARGV[5]
local f = redis.call('HMGET', rec, 'status', 'driver', 'disputed', 'bill', 'lot', 'plate', 'amount',
                     'currency')
local status = f[1]
if not status or not f[4] then
  return {'unknown'}
end
if f[3] ~= '1' then
  return {'not_disputed', status}
end
local function hist(to, cause)
  redis.call('RPUSH', KEYS[2], cjson.encode({at = now, from = status, to = to, cause = cause}))
end
if outcome == 'upheld' then
  redis.call('HSET', rec, 'dispute_outcome', 'upheld', 'dispute_resolved_at', ARGV[2])
  arrears_move(rec, seq, nil, false, now)
  redis.call('ZADD', KEYS[3], now, seq)
  hist(status, 'dispute resolved, upheld: ' .. ARGV[3])
  local id = audit(ARGV[4], now, 'resolve', f[4], f[5], ARGV[3], {'outcome', 'upheld',
                                                                  'driver', f[2] or ''})
  return {'ok', 'upheld', f[2] or '', id}
end
-- waived: never while a charge is with the provider, which could still succeed.
if status == 'charging' or status == 'accepted' then
  return {'busy', status}
end
local money = money_day(rec, KEYS[5])
if money ~= 'ok' and money ~= 'none' then
  return {'day', money}
end
redis.call('HSET', rec, 'status', 'waived', 'waived_at', ARGV[2], 'waive_reason', ARGV[3],
           'dispute_outcome', 'waived', 'dispute_resolved_at', ARGV[2])
if money == 'ok' then
  money_move(KEYS[5], rec, 'waived')
end
arrears_move(rec, seq, 'settled', false, now)
redis.call('ZREM', KEYS[3], seq)
hist('waived', 'dispute resolved, waived: ' .. ARGV[3])
local ob = redis.call('XADD', KEYS[4], 'MAXLEN', '~', '100000', '*', 'kind', 'waived',
                      'bill', f[4], 'driver', f[2] or '', 'plate', f[6] or '',
                      'amount', f[7] or '0', 'currency', f[8] or '', 'lot', f[5] or '',
                      'at', ARGV[2])
reminder_noted(rec, ob, 'waived')
local id = audit(ARGV[4], now, 'resolve', f[4], f[5], ARGV[3], {'outcome', 'waived',
                                                                'driver', f[2] or ''})
return {'ok', 'waived', f[2] or '', id}
