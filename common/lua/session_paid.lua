-- A payment on site after a hold: the held session closes as paid_on_site, in one step.
-- KEYS: 1 open  2 fold  3 held  4 day counters  5 record (pk:{L}:s:<seq>)
--       6.. idempotency day buckets, today's first
-- ARGV: 1 idempotency field (12-byte digest)  2 body hash (8 bytes)  3 seq  4 amount paid  5 method  6 payment ts
--       7 session id  8 currency  9 display  10 idempotency ttl  11 record ttl  12 now  13 lot
--       14 device  15 event id
-- Returns {'dup', answer} | {'conflict'} | {'ok', answer} | {'unknown'}
--       | {'not_held', status} | {'short', amount due}
local P = lot_prefix(KEYS[1])
local seen = idem_check(6, #KEYS, ARGV[1], ARGV[2])
if seen then
  return seen
end
local seq, paid = ARGV[3], tonumber(ARGV[4])

local function answer(due)
  return table.concat({'open', 'paid_on_site', '', ARGV[7], '', tostring(due), ARGV[8],
                       ARGV[9]}, US)
end

local rec = open_get(P, seq)
if not rec then
  local status = redis.call('HGET', KEYS[5], 'status')
  if status == 'paid_on_site' then
    -- Paid already (the terminal sent its confirmation twice with two event ids): the same answer.
    local ans = answer(redis.call('HGET', KEYS[5], 'amount') or '0')
    idem_store(KEYS[6], ARGV[1], ARGV[2], ans, tonumber(ARGV[10]))
    return {'ok', ans}
  end
  if status then
    return {'not_held', status}
  end
  return {'unknown'}
end
local held = redis.call('HGET', KEYS[3], seq)
if not held then
  return {'not_held', 'open'}
end
local h = split(held)
local due = tonumber(h[2])
if paid < due then
  return {'short', tostring(due)}
end
local s = parse_session(rec)
open_del(P, seq)
redis.call('HDEL', KEYS[3], seq)
fold_remove(P, s.fold, seq)
redis.call('HSET', KEYS[5], 'id', ARGV[7], 'session', ARGV[7], 'plate', s.plate, 'lot', ARGV[13],
           'lane_in', s.lane, 'entry', s.entry, 'exit', h[3], 'class', s.class,
           'tariff_version', s.tver, 'amount', tostring(due), 'paid', ARGV[4],
           'currency', ARGV[8], 'method', ARGV[5], 'paid_at', ARGV[6], 'status', 'paid_on_site',
           'reason', 'paid_on_site', 'hold_reason', h[1], 'closed_at', ARGV[12],
           'device_paid', ARGV[14], 'event_paid', ARGV[15])
redis.call('EXPIRE', KEYS[5], tonumber(ARGV[11]))
-- The fee due is billed and paid on site in the lot-day of the payment (the stay ends with it);
-- what the terminal took beyond it stays on the record (`paid`), outside the identity.
money_new(KEYS[4], KEYS[5], 'paid_on_site', due, true)
local counters = 'exits=1,open:paid_on_site=1'
if not string.find(s.flags or '', 'n', 1, true) then
  -- A stay with an entry (not one made from an exit alone), for the lot-day's average.
  local stay = tonumber(h[3]) - tonumber(s.entry)
  counters = counters .. ',stays=1,stay_s=' .. (stay > 0 and stay or 0)
end
count(KEYS[4], counters)
local ans = answer(due)
idem_store(KEYS[6], ARGV[1], ARGV[2], ans, tonumber(ARGV[10]))
return {'ok', ans}
