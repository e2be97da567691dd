-- Runtime monthly passes and allow-list of a lot (docs/api.md), which entry and exit decisions
-- read next to the configuration's: pk:{L}:passes (plate -> from|to, local dates, inclusive) and
-- pk:{L}:allow (plates).  Each change is audited in the same step.
-- KEYS: 1 pk:{L}:passes  2 pk:{L}:allow  3 pk:{L}:audit
-- ARGV: 1 op: list|pass_add|pass_del|allow_add|allow_del  2 plate  3 from  4 to  5 reason
--       6 who (role US scope US name)  7 now  8 lot
-- Returns {'list', flat passes, allow} | {'ok', 'added'|'replaced'|'removed', audit id}
--       | {'unknown'}
local op, plate, now = ARGV[1], ARGV[2], tonumber(ARGV[7])
if op == 'list' then
  return {'list', redis.call('HGETALL', KEYS[1]), redis.call('SMEMBERS', KEYS[2])}
end
local what, extra
if op == 'pass_add' then
  local had = redis.call('HSET', KEYS[1], plate, ARGV[3] .. '|' .. ARGV[4]) == 0
  what = had and 'replaced' or 'added'
  extra = {'plate', plate, 'from', ARGV[3], 'to', ARGV[4]}
elseif op == 'pass_del' then
  if redis.call('HDEL', KEYS[1], plate) == 0 then
    return {'unknown'}
  end
  what, extra = 'removed', {'plate', plate}
elseif op == 'allow_add' then
  what = redis.call('SADD', KEYS[2], plate) == 1 and 'added' or 'replaced'
  extra = {'plate', plate}
elseif op == 'allow_del' then
  if redis.call('SREM', KEYS[2], plate) == 0 then
    return {'unknown'}
  end
  what, extra = 'removed', {'plate', plate}
else
  return redis.error_reply('unknown op')
end
local id = audit(ARGV[6], now, op, ARGV[8] .. '/' .. plate, ARGV[8], ARGV[5], extra)
return {'ok', what, id}
