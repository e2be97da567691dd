-- Shared by every gateway script (prepended at build time, after the #!lua shebang).
-- Records are strings of fields joined by the unit separator \31 (plates, ids and display texts
-- never contain it).  An answer is the tuple
--   decision, reason, match, session_id, bill_id, amount, currency, display
-- stored as it was first given, so a replay renders byte for byte the same JSON.
local US = '\31'

local function split(s)
  local out = {}
  for field in string.gmatch(s .. US, '([^' .. US .. ']*)' .. US) do
    out[#out + 1] = field
  end
  return out
end

-- Idempotency: the record of (device, event_id) lives in one of the day buckets KEYS[first..last]
-- as body_hash US answer.  Same hash: the first answer; another hash: a conflict.
local function idem_check(first, last, field, body_hash)
  for i = first, last do
    local v = redis.call('HGET', KEYS[i], field)
    if v then
      local h = string.match(v, '^([^' .. US .. ']*)')
      if h == body_hash then
        return {'dup', string.sub(v, #h + 2)}
      end
      return {'conflict'}
    end
  end
  return nil
end

local function idem_store(key, field, body_hash, answer, ttl)
  redis.call('HSET', key, field, body_hash .. US .. answer)
  if redis.call('TTL', key) < 0 then
    redis.call('EXPIRE', key, ttl)
  end
end

-- The seqs of the open sessions whose plate folds to `fold` (space-separated in the fold index).
local function fold_seqs(fold_key, fold)
  local v = redis.call('HGET', fold_key, fold)
  local out = {}
  if v then
    for seq in string.gmatch(v, '%S+') do
      out[#out + 1] = seq
    end
  end
  return out
end

local function fold_add(fold_key, fold, seq)
  local v = redis.call('HGET', fold_key, fold)
  if v then
    redis.call('HSET', fold_key, fold, v .. ' ' .. seq)
  else
    redis.call('HSET', fold_key, fold, seq)
  end
end

local function fold_remove(fold_key, fold, seq)
  local left = {}
  for _, s in ipairs(fold_seqs(fold_key, fold)) do
    if s ~= seq then
      left[#left + 1] = s
    end
  end
  if #left == 0 then
    redis.call('HDEL', fold_key, fold)
  else
    redis.call('HSET', fold_key, fold, table.concat(left, ' '))
  end
end

-- An open session record: plate US entry_ts US lane US class US tariff_version US flags US fold
local function parse_session(rec)
  local f = split(rec)
  return {plate = f[1], entry = f[2], lane = f[3], class = f[4], tver = f[5], flags = f[6],
          fold = f[7]}
end

-- Bumps the counters of a lot-day: ARGV-style list "field=delta,field=delta".
local function count(day_key, list)
  if list == '' then
    return
  end
  for field, delta in string.gmatch(list, '([^=,]+)=(%-?%d+)') do
    redis.call('HINCRBY', day_key, field, tonumber(delta))
  end
end

-- Money of a lot-day (docs/redis.md, "Money").  A bill is counted in the lot-day of its exit (the
-- record's `day`), and the part of its amount not refunded sits in exactly one bucket of that
-- lot-day (the record's `mb`: outstanding, overdue, defaulted, paid, paid_late, paid_on_site or
-- waived), the refunded part in `refunded`, so on every lot-day at every moment
--   billed = paid + paid_late + paid_on_site + outstanding + overdue + defaulted + waived
--            + refunded
-- Every script that changes a bill's status moves its money in the same step.  A script touches
-- only the keys it is given, so the caller names the lot-day's key; a caller that does not know
-- the bill's day passes pk:{L}:day:- and is answered {'day', date} with nothing changed.

-- 'ok' when day_key is the bill's lot-day, 'none' for a record without accounting (a bill made
-- before it existed: its later moves are not counted), else the day the caller must name.
local function money_day(rec, day_key)
  if not day_key then
    error('the bill\'s lot-day key is missing')
  end
  local f = redis.call('HMGET', rec, 'day', 'mb')
  if not f[1] or not f[2] then
    return 'none'
  end
  if string.sub(day_key, -(#f[1] + 5)) ~= ':day:' .. f[1] then
    return f[1]
  end
  return 'ok'
end

-- A bill or a payment on site is made: `amount` billed, in bucket `to`, in the lot-day day_key
-- (whose `billed` the caller counts, or not, with `with_billed`).
local function money_new(day_key, rec, to, amount, with_billed)
  local day = string.match(day_key, ':day:([^:]+)$')
  if with_billed then
    redis.call('HINCRBY', day_key, 'billed', amount)
  end
  redis.call('HINCRBY', day_key, to, amount)
  redis.call('HSET', rec, 'day', day, 'mb', to)
end

-- The bill's money not refunded moves to bucket `to` (its status changed).
local function money_move(day_key, rec, to)
  local f = redis.call('HMGET', rec, 'mb', 'amount', 'refunded_amount')
  if f[1] == to then
    return
  end
  local left = tonumber(f[2] or '0') - tonumber(f[3] or '0')
  if left ~= 0 then
    redis.call('HINCRBY', day_key, f[1], -left)
    redis.call('HINCRBY', day_key, to, left)
  end
  redis.call('HSET', rec, 'mb', to)
end

-- `amount` of a paid bill is refunded.
local function money_refund(day_key, rec, amount)
  redis.call('HINCRBY', day_key, redis.call('HGET', rec, 'mb'), -amount)
  redis.call('HINCRBY', day_key, 'refunded', amount)
end

-- The bill's amount changes by delta (a bill recomputed after a correction): billed and its
-- bucket follow.
local function money_adjust(day_key, rec, delta)
  redis.call('HINCRBY', day_key, 'billed', delta)
  redis.call('HINCRBY', day_key, redis.call('HGET', rec, 'mb'), delta)
end
