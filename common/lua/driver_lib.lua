-- Appended to the prelude of the driver scripts.  The driver's record pk:drv:{D} is the
-- authority; each of its plates carries a snapshot of it in the plate index pk:plate:{F} (F: the
-- plate's province-folded confusable key), which is what the gateway reads at an exit.  A snapshot
-- is the tuple  driver US version US score US suspended US eligibility US unpaid_count US
-- unpaid_amount US provider  and a newer version always replaces an older one, whatever order the
-- updates arrive in.
local function snapshot(key)
  local d = redis.call('HMGET', key, 'id', 'ver', 'score', 'suspended', 'eligibility',
                       'unpaid_count', 'unpaid_amount', 'provider')
  for i = 1, 8 do
    d[i] = d[i] or ''
  end
  return table.concat(d, US)
end

-- The snapshot, then the driver's plates ('' for none), in one read.
local function snapshot_plates(key)
  local d = redis.call('HMGET', key, 'id', 'ver', 'score', 'suspended', 'eligibility',
                       'unpaid_count', 'unpaid_amount', 'provider', 'plates')
  local plates = d[9] or ''
  d[9] = nil
  for i = 1, 8 do
    d[i] = d[i] or ''
  end
  return table.concat(d, US), plates
end

-- Driver events are applied once each: the set of (bill, event) already applied.
local function once(applied_key, bill, event)
  return redis.call('SADD', applied_key, bill .. ':' .. event) == 1
end

-- Appends to the driver's credit history.
local function credit_history(key, entry)
  redis.call('RPUSH', key, cjson.encode(entry))
end

local function clamp_score(key, delta, max_score)
  local s = tonumber(redis.call('HGET', key, 'score') or '0') + delta
  if s > max_score then
    s = max_score
  end
  if s < 0 then
    s = 0
  end
  redis.call('HSET', key, 'score', tostring(s))
  return s
end
