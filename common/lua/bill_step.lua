-- The next step of a bill whose time has come (from the due set), taken by one billing process at
-- a time: a lease (charging_until) keeps others off while its charge is in flight, and brings the
-- bill back if that process dies.
-- KEYS: 1 bill record  2 history  3 due  4 outbox  5 the bill's lot-day (pk:{L}:day:<day>, or
--       pk:{L}:day:- when not known: see money_day in the prelude)
-- ARGV: 1 seq  2 now  3 lease (s)  4 consumer
-- Returns {'charge', bill id, driver, provider, amount, currency, attempt, plate, transients, day}
--       | {'query', bill id, driver, provider, amount, currency, attempt, plate, queries, day}
--       | {'refund', bill id, driver, provider, amount, currency, refund number, charge id, day,
--          the bill's amount}
--       | {'overdue', bill id, driver, amount} | {'defaulted', bill id, driver, amount}
--       | {'wait'} | {'done'} | {'day', the bill's day}: ask again with its lot-day's key
-- KEYS may also hold pk:{L}:arrears, pk:{L}:arrears:info and pk:{L}:defaulted (default_lib.lua:
-- the arrears index follows overdue and defaulted bills).  A disputed bill is neither charged nor
-- aged until staff resolve it, unless someone asked for a charge.
local rec, now, seq = KEYS[1], tonumber(ARGV[2]), ARGV[1]
local f = redis.call('HMGET', rec, 'status', 'charging_until', 'overdue_at', 'default_at', 'bill',
                     'driver', 'provider', 'amount', 'currency', 'attempts', 'charge_requested',
                     'plate', 'lot', 'next_at', 'transients', 'refund_requested',
                     'provider_ref', 'refunds', 'refunding_until', 'queries')
local status = f[1]
-- A refund asked for by staff: one at a time, under a lease like a charge.
if f[16] and (status == 'paid' or status == 'paid_late' or status == 'refunded') then
  if tonumber(f[19] or '0') > now then
    redis.call('ZADD', KEYS[3], tonumber(f[19]), seq)
    return {'wait'}
  end
  local n = tonumber(f[18] or '0') + 1
  local lease_until = now + tonumber(ARGV[3])
  redis.call('HSET', rec, 'refunding_until', tostring(lease_until))
  redis.call('ZADD', KEYS[3], lease_until, seq)
  return {'refund', f[5] or '', f[6] or '', f[7] or '', f[16], f[9] or '', tostring(n), f[17] or '',
          redis.call('HGET', rec, 'day') or '', f[8] or '0'}
end
if not status or status == 'paid' or status == 'paid_late' or status == 'waived' or
   status == 'refunded' or status == 'alert' or status == 'reassigned' or
   status == 'merged' or status == 'void' then
  redis.call('ZREM', KEYS[3], seq)
  return {'done'}
end
local function hist(to, cause)
  redis.call('RPUSH', KEYS[2], cjson.encode({at = now, from = status, to = to, cause = cause}))
end
local function outbox(kind)
  local id = redis.call('XADD', KEYS[4], 'MAXLEN', '~', '100000', '*', 'kind', kind,
                        'bill', f[5] or '', 'driver', f[6] or '', 'plate', f[12] or '',
                        'amount', f[8] or '0', 'currency', f[9] or '', 'lot', f[13] or '',
                        'at', tostring(now))
  reminder_noted(rec, id, kind)
end
-- A charge in flight, or the query of an accepted deduction: its lease keeps others off.
local in_flight = status == 'charging' or status == 'accepted'
if in_flight and tonumber(f[2] or '0') > now then
  redis.call('ZADD', KEYS[3], tonumber(f[2]), seq)
  return {'wait'}
end
if not in_flight and f[11] ~= '1' and redis.call('HGET', rec, 'disputed') == '1' then
  -- Disputed: it waits for staff (dispute_resolve puts it back in the due set).
  redis.call('ZREM', KEYS[3], seq)
  return {'wait'}
end
local overdue_at, default_at = tonumber(f[3] or '0'), tonumber(f[4] or '0')
-- An accepted deduction (WeChat Pay) is in the provider's hands and does not age: its final result
-- decides, by notification or by the query below.
if status ~= 'defaulted' and default_at > 0 and now >= default_at and not in_flight then
  local money = money_day(rec, KEYS[5])
  if money ~= 'ok' and money ~= 'none' then
    return {'day', money}
  end
  redis.call('HSET', rec, 'status', 'defaulted', 'defaulted_at', tostring(now))
  arrears_move(rec, seq, 'defaulted', nil, now)
  if money == 'ok' then
    money_move(KEYS[5], rec, 'defaulted')
  end
  hist('defaulted', 'not paid by the default time')
  outbox('defaulted')
  redis.call('ZREM', KEYS[3], seq)
  return {'defaulted', f[5] or '', f[6] or '', f[8] or '0'}
end
if status ~= 'overdue' and status ~= 'defaulted' and overdue_at > 0 and now >= overdue_at and
   not in_flight then
  local money = money_day(rec, KEYS[5])
  if money ~= 'ok' and money ~= 'none' then
    return {'day', money}
  end
  redis.call('HSET', rec, 'status', 'overdue', 'overdue_since', tostring(now))
  arrears_move(rec, seq, 'overdue', nil, now)
  if money == 'ok' then
    money_move(KEYS[5], rec, 'overdue')
  end
  hist('overdue', 'grace period over')
  outbox('overdue')
  if f[11] ~= '1' then
    redis.call('ZADD', KEYS[3], default_at, seq)
  end
  return {'overdue', f[5] or '', f[6] or '', f[8] or '0'}
end
if status == 'accepted' then
  local nxt = tonumber(f[14] or '0')
  if nxt > now then
    redis.call('ZADD', KEYS[3], nxt, seq)
    return {'wait'}
  end
  local lease_until = now + tonumber(ARGV[3])
  redis.call('HSET', rec, 'charging_until', tostring(lease_until), 'charging_by', ARGV[4])
  redis.call('ZADD', KEYS[3], lease_until, seq)
  return {'query', f[5] or '', f[6] or '', f[7] or '', f[8] or '0', f[9] or '', f[10] or '1',
          f[12] or '', f[20] or '0', redis.call('HGET', rec, 'day') or ''}
end
local chargeable = status == 'pending' or status == 'retry_scheduled' or status == 'charging' or
                   f[11] == '1'
if not chargeable or tonumber(f[14] or '0') > now then
  -- Nothing to try until the next lifecycle time.
  local nxt = tonumber(f[14] or '0')
  if nxt <= now then
    nxt = (status == 'overdue' or status == 'defaulted') and default_at or overdue_at
  end
  if status == 'defaulted' or nxt <= now then
    redis.call('ZREM', KEYS[3], seq)
    return {'wait'}
  end
  redis.call('ZADD', KEYS[3], nxt, seq)
  return {'wait'}
end
local attempt = tonumber(f[10] or '0') + 1
local lease_until = now + tonumber(ARGV[3])
if status == 'charging' then
  -- The lease ran out: the process charging died or lost Redis, and the attempt's outcome is
  -- unknown.  The same attempt again, with the same idempotency key (Stripe) or out_trade_no and
  -- body (WeChat Pay), so the provider answers with the first charge instead of making a second.
  attempt = math.max(attempt - 1, 1)
  redis.call('HSET', rec, 'charging_until', tostring(lease_until), 'attempts', tostring(attempt),
             'charging_by', ARGV[4])
  hist('charging', 'attempt ' .. attempt .. ' taken again')
else
  redis.call('HSET', rec, 'status', 'charging', 'charging_until', tostring(lease_until),
             'attempts', tostring(attempt), 'charging_by', ARGV[4], 'charging_from', status)
  redis.call('HDEL', rec, 'queries')
  hist('charging', 'attempt ' .. attempt)
end
redis.call('HDEL', rec, 'charge_requested', 'next_at')
redis.call('ZADD', KEYS[3], lease_until, seq)
return {'charge', f[5] or '', f[6] or '', f[7] or '', f[8] or '0', f[9] or '', tostring(attempt),
        f[12] or '', f[15] or '0', redis.call('HGET', rec, 'day') or ''}
