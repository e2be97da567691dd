-- Appended after the prelude (and the driver library) to the bill, default, dispute, lane, audit
-- and driver scripts (cmake/EmbedLua.cmake).  Two things the people's API (docs/api.md) and
-- billing share, each written in the same step as the change it follows:
--
-- The arrears index of a lot.  A bill's arrears stage lives in its record (`stage`: owed, overdue,
-- defaulted or settled; `disputed` 1 while disputed), and every script that moves a bill between
-- stages calls arrears_move, which keeps
--   pk:{L}:arrears        zset: the unpaid bills that are overdue, defaulted or disputed, scored by
--                         exit time; members are the session numbers zero-padded to 12 digits, so
--                         bills of the same second sort by number
--   pk:{L}:arrears:info   hash: member -> stage US amount US plate US driver US exit US since US
--                         disputed US currency US bill id; and the lot's totals in '#...' fields
--   pk:{L}:defaulted      zset: every bill that ever defaulted, by exit time (default rates)
--
-- The audit log: append-only streams, pk:{L}:audit (a lot's bills, lanes, passes) and
-- pk:drv:{D}:audit (a driver), never trimmed.
--
-- These keys are found among KEYS by their suffix, so callers may pass them in any position; a
-- caller that passes none leaves the index (or the log) alone.
local function key_of(suffix)
  for i = 1, #KEYS do
    local k = KEYS[i]
    if #k > #suffix and string.sub(k, -#suffix) == suffix then
      return k
    end
  end
  return nil
end

local ARREARS_UNPAID = {owed = true, overdue = true, defaulted = true}

-- The stage a bill of this status is in, for a bill whose record names none yet.
local function stage_of(status)
  if status == 'paid' or status == 'paid_late' or status == 'waived' or status == 'refunded' or
     status == 'reassigned' or status == 'merged' or status == 'void' then
    return 'settled'
  end
  if status == 'overdue' or status == 'defaulted' then
    return status
  end
  return 'owed'
end

local function arrears_totals(info, stage, disputed, amount, sign)
  if not ARREARS_UNPAID[stage] then
    return
  end
  redis.call('HINCRBY', info, '#owed_count', sign)
  redis.call('HINCRBY', info, '#owed_amount', sign * amount)
  if stage ~= 'owed' then
    redis.call('HINCRBY', info, '#' .. stage .. '_count', sign)
    redis.call('HINCRBY', info, '#' .. stage .. '_amount', sign * amount)
  end
  if disputed then
    redis.call('HINCRBY', info, '#disputed_count', sign)
    redis.call('HINCRBY', info, '#disputed_amount', sign * amount)
  end
end

-- Moves bill `seq` (record key `rec`) to arrears stage `stage` (nil: unchanged) and dispute flag
-- `disputed` (nil: unchanged).  A settled bill is never disputed.  A bill whose record has no stage
-- yet (made before the index existed) is counted from now on.
local function arrears_move(rec, seq, stage, disputed, now)
  local idx, info = key_of('}:arrears'), key_of('}:arrears:info')
  if not idx or not info then
    return
  end
  local f = redis.call('HMGET', rec, 'stage', 'disputed', 'amount', 'plate', 'driver', 'exit',
                       'currency', 'stage_since', 'status', 'bill')
  local old_stage, old_disputed = f[1], f[2] == '1'
  local new_stage = stage or old_stage or stage_of(f[9])
  if disputed == nil then
    disputed = old_disputed
  end
  if not ARREARS_UNPAID[new_stage] then
    disputed = false
  end
  local amount = tonumber(f[3] or '0') or 0
  if old_stage then
    arrears_totals(info, old_stage, old_disputed, amount, -1)
  end
  arrears_totals(info, new_stage, disputed, amount, 1)
  local since = f[8] or tostring(now)
  if new_stage ~= old_stage then
    since = tostring(now)
  end
  redis.call('HSET', rec, 'stage', new_stage, 'stage_since', since)
  if disputed then
    redis.call('HSET', rec, 'disputed', '1')
  else
    redis.call('HDEL', rec, 'disputed')
  end
  local member = string.format('%012d', tonumber(seq))
  local exit_ts = tonumber(f[6] or '') or now
  if new_stage == 'overdue' or new_stage == 'defaulted' or (disputed and new_stage == 'owed') then
    redis.call('ZADD', idx, exit_ts, member)
    redis.call('HSET', info, member,
               table.concat({new_stage, tostring(amount), f[4] or '', f[5] or '', tostring(exit_ts),
                             since, disputed and '1' or '0', f[7] or '', f[10] or ''}, US))
  else
    redis.call('ZREM', idx, member)
    redis.call('HDEL', info, member)
  end
  if new_stage == 'defaulted' and old_stage ~= 'defaulted' then
    local ever = key_of('}:defaulted')
    if ever then
      redis.call('ZADD', ever, exit_ts, member)
    end
    redis.call('HINCRBY', info, '#ever_defaulted', 1)
    redis.call('HINCRBY', info, '#ever_defaulted_amount', amount)
  end
end

-- A bill taken in by billing: owed from now on, and counted among the lot's bills.
local function arrears_intake(rec, seq, now)
  local info = key_of('}:arrears:info')
  if not info or redis.call('HEXISTS', rec, 'stage') == 1 then
    return
  end
  arrears_move(rec, seq, nil, nil, now)
  redis.call('HINCRBY', info, '#bills', 1)
  redis.call('HINCRBY', info, '#billed', tonumber(redis.call('HGET', rec, 'amount') or '0') or 0)
end

-- Notes an outbox entry (a notification for the driver) in the bill's record, so the collection
-- status of an arrear can be read without scanning the outbox.
local function reminder_noted(rec, id, kind)
  local cur = redis.call('HGET', rec, 'reminders')
  redis.call('HSET', rec, 'reminders', (cur and (cur .. ' ') or '') .. id .. ':' .. kind)
end

-- Appends an entry to the audit stream among KEYS ('' when there is none).  who: role US scope US
-- name of the token that acted; extra: more field, value pairs.
local function audit(who, now, action, target, lot, reason, extra)
  local key = key_of('}:audit')
  if not key or not who or who == '' then
    return ''
  end
  local w = split(who)
  local x = {'XADD', key, '*', 'at', tostring(now), 'actor', w[3] or '', 'role', w[1] or '',
             'scope', w[2] or '', 'action', action, 'target', target, 'lot', lot or '',
             'reason', reason or ''}
  for _, v in ipairs(extra or {}) do
    x[#x + 1] = v
  end
  return redis.call(unpack(x))
end
