-- Staff restore a driver's leave-first privilege after review: the suspension ends (and, when
-- given, the score is set), written to the driver's credit history and to the driver's audit
-- stream in the same step.  Bills still overdue stay owed; a later overdue bill suspends again.
-- KEYS: 1 pk:drv:{D}  2 pk:drv:{D}:history  3 pk:drv:{D}:audit
-- ARGV: 1 now  2 reason  3 who (role US scope US name)  4 the plate staff looked up
--       5 score ('' : unchanged)  6 max score
-- Returns {'ok', snapshot, plates, audit id} | {'unknown'} | {'not_suspended'}
local key, now = KEYS[1], tonumber(ARGV[1])
if redis.call('EXISTS', key) == 0 then
  return {'unknown'}
end
local f = redis.call('HMGET', key, 'suspended', 'suspend_cause', 'score', 'id')
if f[1] ~= '1' and ARGV[5] == '' then
  return {'not_suspended'}
end
redis.call('HSET', key, 'suspended', '0', 'updated_at', ARGV[1])
redis.call('HDEL', key, 'suspend_cause')
local score = tonumber(f[3] or '0')
if ARGV[5] ~= '' then
  score = clamp_score(key, tonumber(ARGV[5]) - score, tonumber(ARGV[6]))
end
redis.call('HINCRBY', key, 'ver', 1)
local w = split(ARGV[3])
credit_history(KEYS[2], {at = now, cause = 'reinstated', was_suspended = f[1] == '1',
                         suspend_cause = f[2] or '', score = score, delta = 0,
                         by = w[3] or '', why = ARGV[2]})
local id = audit(ARGV[3], now, 'reinstate', f[4] or '', '', ARGV[2],
                 {'driver', f[4] or '', 'plate', ARGV[4], 'score', tostring(score)})
return {'ok', snapshot(key), redis.call('HGET', key, 'plates') or '', id}
