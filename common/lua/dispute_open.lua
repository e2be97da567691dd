-- A bill is disputed (by its driver or by staff): a flag on the bill, not a status.  While it is
-- set billing charges nothing by itself and the bill does not age (bill_step); a charge the driver
-- or staff ask for still goes through.  The bill shows in the defaults list until resolved.
-- KEYS: 1 bill record  2 history  3 pk:{L}:arrears  4 pk:{L}:arrears:info  5 pk:{L}:audit
-- ARGV: 1 seq  2 now  3 reason  4 who (role US scope US name)  5 the driver it must belong to
--       ('' for staff)
-- Returns {'ok', status, audit id} | {'unknown'} | {'not_yours'} | {'not_owed', status}
--       | {'already'}
local rec, now = KEYS[1], tonumber(ARGV[2])
local f = redis.call('HMGET', rec, 'status', 'driver', 'disputed', 'bill', 'lot')
local status = f[1]
if not status or not f[4] then
  return {'unknown'}
end
if ARGV[5] ~= '' and f[2] ~= ARGV[5] then
  return {'not_yours'}
end
if stage_of(status) == 'settled' then
  return {'not_owed', status}
end
if f[3] == '1' then
  return {'already'}
end
local w = split(ARGV[4])
redis.call('HSET', rec, 'disputed_at', ARGV[2], 'dispute_reason', ARGV[3],
           'dispute_by', w[3] or '', 'dispute_role', w[1] or '')
redis.call('HDEL', rec, 'dispute_outcome', 'dispute_resolved_at')
arrears_move(rec, ARGV[1], nil, true, now)
redis.call('RPUSH', KEYS[2], cjson.encode({at = now, from = status, to = status,
                                           cause = 'disputed by ' .. (w[1] or '?') .. ': ' ..
                                                   ARGV[3]}))
local id = audit(ARGV[4], now, 'dispute', f[4], f[5], ARGV[3], {'driver', f[2] or ''})
return {'ok', status, id}
