-- One lot's city figures (docs/api.md): what its lot-day counters say over a range of local days,
-- its arrears totals now, and how many of the bills that left in the range ever defaulted.  Reads
-- one hash per day and the totals: never the bills.
-- KEYS: 1 pk:{L}:arrears:info  2 pk:{L}:defaulted  3.. pk:{L}:day:<date> of each day of the range
-- ARGV: 1 first exit time of the range  2 end of the range (exclusive)
-- Returns {exits, bills, billed, owed count, owed amount, overdue count, overdue amount,
--          defaulted count, defaulted amount, disputed count, disputed amount, defaulted in range,
--          manual openings}
local exits, bills, billed, manual = 0, 0, 0, 0
for i = 3, #KEYS do
  local d = redis.call('HMGET', KEYS[i], 'exits', 'bills', 'billed', 'manual_open')
  exits = exits + (tonumber(d[1] or '0') or 0)
  bills = bills + (tonumber(d[2] or '0') or 0)
  billed = billed + (tonumber(d[3] or '0') or 0)
  manual = manual + (tonumber(d[4] or '0') or 0)
end
local t = redis.call('HMGET', KEYS[1], '#owed_count', '#owed_amount', '#overdue_count',
                     '#overdue_amount', '#defaulted_count', '#defaulted_amount', '#disputed_count',
                     '#disputed_amount')
local out = {exits, bills, billed}
for i = 1, 8 do
  out[#out + 1] = tonumber(t[i] or '0') or 0
end
out[#out + 1] = redis.call('ZCOUNT', KEYS[2], ARGV[1], '(' .. ARGV[2])
out[#out + 1] = manual
return out
