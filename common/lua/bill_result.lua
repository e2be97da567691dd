-- The outcome of a charge attempt taken with bill_step.
-- KEYS: 1 bill record  2 history  3 due  4 outbox  5 the bill's lot-day (money_day, prelude)
-- ARGV: 1 seq  2 now  3 outcome: paid|declined|transient|alert|accepted  4 provider reference
--       5 code (decline or error code)  6 next attempt time ('' : none left; accepted: when to
--       ask the provider how it ended)  7 attempt number
-- Returns {'paid', late 1|0, bill, driver, amount} | {'declined', status} | {'retry'} | {'alert'}
--       | {'accepted'} | {'stale', status} | {'day', the bill's day}: ask again with its key
-- 'accepted' (WeChat Pay's ACCEPTED): the provider took the deduction and reports its end later;
-- the bill waits in status accepted, and the outcomes of its queries come here too.
-- KEYS may also hold pk:{L}:arrears and pk:{L}:arrears:info (default_lib.lua): a paid bill leaves
-- the arrears index.
local rec, now, seq, outcome = KEYS[1], tonumber(ARGV[2]), ARGV[1], ARGV[3]
local f = redis.call('HMGET', rec, 'status', 'attempts', 'charging_from', 'bill', 'driver',
                     'amount', 'overdue_at', 'default_at', 'plate', 'currency', 'lot')
local status, from = f[1], f[3] or 'pending'
local function hist(to, cause)
  redis.call('RPUSH', KEYS[2], cjson.encode({at = now, from = status, to = to, cause = cause,
                                             ref = ARGV[4], code = ARGV[5],
                                             attempt = tonumber(ARGV[7])}))
end
local function outbox(kind)
  local id = redis.call('XADD', KEYS[4], 'MAXLEN', '~', '100000', '*', 'kind', kind,
                        'bill', f[4] or '', 'driver', f[5] or '', 'plate', f[9] or '',
                        'amount', f[6] or '0', 'currency', f[10] or '', 'lot', f[11] or '',
                        'code', ARGV[5], 'at', tostring(now))
  reminder_noted(rec, id, kind)
end
local in_flight = status == 'charging' or status == 'accepted'
local ours = in_flight and f[2] == ARGV[7]

if outcome == 'paid' then
  -- Money moved: record it whoever holds the lease now (a retaken attempt with the same
  -- idempotency key is the same payment).
  if status == 'paid' or status == 'paid_late' or status == 'refunded' then
    return {'stale', status}
  end
  local money = money_day(rec, KEYS[5])
  if money ~= 'ok' and money ~= 'none' then
    return {'day', money}
  end
  local was = in_flight and from or status
  local late = (was == 'overdue' or was == 'defaulted') and 1 or 0
  local to = late == 1 and 'paid_late' or 'paid'
  redis.call('HSET', rec, 'status', to, 'paid_at', tostring(now), 'provider_ref', ARGV[4])
  arrears_move(rec, seq, 'settled', false, now)
  if money == 'ok' then
    money_move(KEYS[5], rec, to)
  end
  redis.call('HDEL', rec, 'charging_until', 'charging_by', 'next_at', 'queries')
  redis.call('ZREM', KEYS[3], seq)
  hist(to, 'charge succeeded')
  outbox('paid')
  return {'paid', late, f[4] or '', f[5] or '', f[6] or '0'}
end
if not ours then
  return {'stale', status or ''}
end
if outcome == 'alert' then
  redis.call('HSET', rec, 'status', 'alert', 'alert', ARGV[5])
  redis.call('ZREM', KEYS[3], seq)
  hist('alert', 'needs a person: ' .. ARGV[5])
  return {'alert'}
end
if outcome == 'accepted' then
  redis.call('HSET', rec, 'status', 'accepted', 'next_at', ARGV[6])
  redis.call('HDEL', rec, 'charging_until', 'charging_by')
  redis.call('ZADD', KEYS[3], tonumber(ARGV[6]), seq)
  if status == 'accepted' then
    redis.call('HINCRBY', rec, 'queries', 1)
    hist('accepted', 'still accepted, asking again later')
  else
    redis.call('HSET', rec, 'accepted_at', tostring(now))
    hist('accepted', 'deduction accepted, waiting for its result')
  end
  return {'accepted'}
end
if outcome == 'transient' and status == 'accepted' then
  -- The query went unanswered: the deduction is still the provider's; ask again later.
  redis.call('HSET', rec, 'next_at', ARGV[6])
  redis.call('HDEL', rec, 'charging_until', 'charging_by')
  redis.call('HINCRBY', rec, 'queries', 1)
  redis.call('ZADD', KEYS[3], tonumber(ARGV[6]), seq)
  hist('accepted', 'query failed, asking again')
  return {'retry'}
end
if outcome == 'transient' then
  -- Not the driver's failure: try again soon with the same key, without using up an attempt.
  redis.call('HSET', rec, 'status', from, 'attempts', tostring(tonumber(ARGV[7]) - 1),
             'next_at', ARGV[6])
  redis.call('HINCRBY', rec, 'transients', 1)
  redis.call('HDEL', rec, 'charging_until', 'charging_by')
  redis.call('ZADD', KEYS[3], tonumber(ARGV[6]), seq)
  hist(from, 'provider unavailable, retrying')
  return {'retry'}
end
-- declined
local to
if from == 'overdue' or from == 'defaulted' then
  to = from
elseif ARGV[6] ~= '' then
  to = 'retry_scheduled'
else
  to = 'failed'
end
redis.call('HSET', rec, 'status', to, 'last_decline', ARGV[5])
redis.call('HDEL', rec, 'charging_until', 'charging_by', 'transients', 'next_at', 'queries')
if to == 'retry_scheduled' then
  redis.call('HSET', rec, 'next_at', ARGV[6])
  redis.call('ZADD', KEYS[3], tonumber(ARGV[6]), seq)
elseif to == 'defaulted' then
  redis.call('ZREM', KEYS[3], seq)
else
  local at = to == 'overdue' and tonumber(f[8] or '0') or tonumber(f[7] or '0')
  redis.call('ZADD', KEYS[3], at, seq)
end
hist(to, 'charge declined')
outbox('payment_failed')
return {'declined', to}
