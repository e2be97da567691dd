-- Corrections of a misread that touch closed visits only (docs/api.md): two visits that were one
-- (merge), one visit that was two (split).  The gateway reads both records, recomputes the fees
-- with the tariff engine and sends what each record becomes; this script applies it in one step
-- provided both records are still as read: the records, the money of the lot-days (prelude:
-- money_*), the arrears index, the due set, the bills stream (a new bill), both histories, the
-- lot-day counters and the audit log.  The drivers' records follow from the gateway.
-- KEYS: 1 record P (pk:{L}:s:<p>: merge A, split S)  2 history P  3 record Q (merge B, split the
--       new session S2: must not exist)  4 history Q  5 due  6 bills stream
--       7 P's lot-day now (its record's `day`, or pk:{L}:day:- when it has none)
--       8 the lot-day P's bill moves to (merge: B's exit; split: exit_at)
--       9 Q's lot-day (merge: B's record's `day`, or pk:{L}:day:-; split: S's exit, where S2's
--       bill is counted)  10 pk:{L}:arrears  11 pk:{L}:arrears:info  12 pk:{L}:audit
--       13 pk:{L}:tariffs  14 pk:{L}:meta
-- read:   ARGV: 1 'read'  Returns {'read', flat record P, flat record Q, P's tariff or '', the
--         lot's last session number} (the tariff: the canonical JSON of P's tariff_version)
-- commit: ARGV: 1 'merge'|'split'  2 seq P  3 seq Q  4 P's status as read  5 P's amount as read
--         6 Q's status as read ('' for split)  7 Q's amount as read  8 now  9 reason
--         10 who (role US scope US name)  11 lot  12 record ttl (a closed record without bill)
--         13 bill stream fields of a new bill (US-joined pairs: P's when merge, S2's when split)
--         14 P's change  15 Q's change (merge: only what changes on B): JSON objects
--         {"set": {field: value, ...}, "del": [field, ...]}
--         Returns {'ok', audit id} | {'retry'}
local mode = ARGV[1]
if mode == 'read' then
  local p = redis.call('HGETALL', KEYS[1])
  local tver = redis.call('HGET', KEYS[1], 'tariff_version')
  local tariff = ''
  if tver then
    tariff = redis.call('HGET', KEYS[13], tver) or ''
  end
  return {'read', p, redis.call('HGETALL', KEYS[3]), tariff,
          redis.call('HGET', KEYS[14], 'seq') or '0'}
end

local rec_p, rec_q = KEYS[1], KEYS[3]
local sp, sq, now, reason, lot = ARGV[2], ARGV[3], tonumber(ARGV[8]), ARGV[9], ARGV[11]
local p_now = redis.call('HMGET', rec_p, 'status', 'amount')
if p_now[1] ~= ARGV[4] or (p_now[2] or '') ~= ARGV[5] then
  return {'retry'}
end
if mode == 'merge' then
  local q_now = redis.call('HMGET', rec_q, 'status', 'amount')
  if q_now[1] ~= ARGV[6] or (q_now[2] or '') ~= ARGV[7] then
    return {'retry'}
  end
elseif redis.call('EXISTS', rec_q) == 1 then
  return {'retry'}
end
-- The lot-day keys must be the records' (the gateway read them); else the records changed.
for _, c in ipairs({{rec_p, KEYS[7]}, mode == 'merge' and {rec_q, KEYS[9]} or nil}) do
  local m = money_day(c[1], c[2])
  if m ~= 'ok' and m ~= 'none' then
    return {'retry'}
  end
end

local BILLED = {pending = true, retry_scheduled = true, failed = true, overdue = true,
                defaulted = true}

-- The bill's money leaves its lot-day (billed, its bucket and the day's count of bills); returns
-- the bucket it was in, or nil for a record without accounting.
local function money_out(rec, day_key)
  if money_day(rec, day_key) ~= 'ok' then
    return nil
  end
  local f = redis.call('HMGET', rec, 'mb', 'amount', 'refunded_amount')
  local left = tonumber(f[2] or '0') - tonumber(f[3] or '0')
  redis.call('HINCRBY', day_key, 'billed', -left)
  redis.call('HINCRBY', day_key, f[1], -left)
  redis.call('HINCRBY', day_key, 'bills', -1)
  redis.call('HDEL', rec, 'day', 'mb')
  return f[1]
end

local function apply(rec, change)
  local set, del = {'HSET', rec}, {'HDEL', rec}
  for k, v in pairs(change.set or {}) do
    set[#set + 1] = k
    set[#set + 1] = v
  end
  for _, k in ipairs(change.del or {}) do
    del[#del + 1] = k
  end
  if #del > 2 then
    redis.call(unpack(del))
  end
  if #set > 2 then
    redis.call(unpack(set))
  end
end

local function history(key, from, to, cause)
  redis.call('RPUSH', key, cjson.encode({at = now, from = from, to = to, cause = cause}))
end

-- A bill no longer owed (its visit merged into another, or free once split): out of the arrears
-- index and the due set, never charged.
local function void(rec, seq)
  if redis.call('HEXISTS', rec, 'stage') == 1 then
    arrears_move(rec, seq, 'settled', false, now)
  end
  redis.call('HDEL', rec, 'charge_requested', 'next_at')
  redis.call('ZREM', KEYS[5], seq)
end

-- A bill taken in by billing whose amount changes: the arrears totals and entry follow.
local function arrears_reprice(rec, seq, old, new)
  local f = redis.call('HMGET', rec, 'stage', 'disputed')
  local info = KEYS[11]
  if not f[1] then
    return
  end
  arrears_totals(info, f[1], f[2] == '1', old, -1)
  arrears_totals(info, f[1], f[2] == '1', new, 1)
  redis.call('HINCRBY', info, '#billed', new - old)
  arrears_move(rec, seq, nil, nil, now)
end

local function new_bill(day_key, rec)
  money_new(day_key, rec, 'outstanding', tonumber(redis.call('HGET', rec, 'amount')), true)
  redis.call('HINCRBY', day_key, 'bills', 1)
  redis.call('PERSIST', rec)
  local s = {'XADD', KEYS[6], '*'}
  for _, v in ipairs(split(ARGV[13])) do
    s[#s + 1] = v
  end
  redis.call(unpack(s))
end

-- P: its new stay, and its bill (kept and repriced, made, voided, or none).
local cp, cq = cjson.decode(ARGV[14]), cjson.decode(ARGV[15])
local sid_p, sid_q = lot .. '~' .. sp, lot .. '~' .. sq
local status_p = ARGV[4]
local new_status = (cp.set or {}).status or status_p
local had_bill = redis.call('HEXISTS', rec_p, 'bill') == 1 and BILLED[status_p]
local bucket = money_out(rec_p, KEYS[7])
if had_bill and not BILLED[new_status] then
  -- Settled with its old amount, which the arrears totals hold.
  void(rec_p, sp)
end
apply(rec_p, cp)
local f = redis.call('HMGET', rec_p, 'amount', 'bill')
local new_amount = tonumber(f[1] or '0')
if had_bill and BILLED[new_status] then
  if bucket then
    money_new(KEYS[8], rec_p, bucket, new_amount, true)
    redis.call('HINCRBY', KEYS[8], 'bills', 1)
  end
  arrears_reprice(rec_p, sp, tonumber(ARGV[5]) or 0, new_amount)
elseif not had_bill and new_status == 'pending' then
  new_bill(KEYS[8], rec_p)
end
if new_status == 'closed' then
  redis.call('EXPIRE', rec_p, tonumber(ARGV[12]))
elseif new_status == 'unbilled' then
  redis.call('PERSIST', rec_p)
end

local cause_p, cause_q
if mode == 'merge' then
  cause_p = 'merged with ' .. sid_q .. ': ' .. reason
  cause_q = 'merged into ' .. sid_p .. ': ' .. reason
else
  cause_p = 'split, the second visit is ' .. sid_q .. ': ' .. reason
  cause_q = 'split from ' .. sid_p .. ': ' .. reason
end
history(KEYS[2], status_p, new_status, cause_p)

-- Q: merge: B's bill void and its record kept as `merged`; split: S2 made, billed or closed.
local status_q
if mode == 'merge' then
  money_out(rec_q, KEYS[9])
  if redis.call('HEXISTS', rec_q, 'bill') == 1 and BILLED[ARGV[6]] then
    void(rec_q, sq)
  end
  apply(rec_q, cq)
  status_q = redis.call('HGET', rec_q, 'status')
  -- A closed record keeps its expiry; a void bill is kept like any bill.
  history(KEYS[4], ARGV[6], status_q, cause_q)
  count(KEYS[8], 'merged=1')
else
  apply(rec_q, cq)
  status_q = redis.call('HGET', rec_q, 'status')
  if status_q == 'pending' then
    new_bill(KEYS[9], rec_q)
  elseif status_q == 'closed' then
    redis.call('EXPIRE', rec_q, tonumber(ARGV[12]))
  end
  history(KEYS[4], nil, status_q, cause_q)
  count(KEYS[9], 'split=1')
end
local id = audit(ARGV[10], now, mode, sid_p, lot, reason,
                 {mode == 'merge' and 'with' or 'second', sid_q,
                  'plate', redis.call('HGET', rec_p, 'plate') or '',
                  'amount', tostring(new_amount), 'status', new_status,
                  'other_amount', redis.call('HGET', rec_q, 'amount') or '0',
                  'other_status', status_q or '',
                  'bill', f[2] or '', 'other_bill', redis.call('HGET', rec_q, 'bill') or ''})
return {'ok', id}
