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
