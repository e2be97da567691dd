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
