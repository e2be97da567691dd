-- One lot's page of the defaults list (docs/api.md): the arrears index in exit-time order, from a
-- position on, filtered, at most `limit` entries, reading at most `budget` index entries.
-- KEYS: 1 pk:{L}:arrears  2 pk:{L}:arrears:info
-- ARGV: 1 start score (exit time)  2 at that score: 'all' entries, 'none', or those after member M
--       3 last score ('+inf' or the oldest exit an `age` filter allows)  4 limit
--       5 stages (comma-separated owed|overdue|defaulted|disputed; '' : all)  6 minimum amount
--       7 budget
-- Returns {{member, score, info, ...}, horizon}: horizon is 'score member' of the last entry read
-- when the budget ran out before the end (entries after it were not read), else ''.
local start, tie, last = ARGV[1], ARGV[2], ARGV[3]
local limit, min_amount, budget = tonumber(ARGV[4]), tonumber(ARGV[6]), tonumber(ARGV[7])
local start_n = tonumber(start)
local want, any = {}, true
for s in string.gmatch(ARGV[5], '[^,]+') do
  want[s] = true
  any = false
end
local out, n, read, offset = {}, 0, 0, 0
while true do
  local page = redis.call('ZRANGEBYSCORE', KEYS[1], start, last, 'WITHSCORES', 'LIMIT', offset, 200)
  if #page == 0 then
    return {out, ''}
  end
  for i = 1, #page, 2 do
    local m, s = page[i], page[i + 1]
    read = read + 1
    local after = true
    if tonumber(s) == start_n then
      after = tie == 'all' or (tie ~= 'none' and m > tie)
    end
    if after then
      local v = redis.call('HGET', KEYS[2], m)
      if v then
        local e = split(v)
        local ok = (tonumber(e[2]) or 0) >= min_amount
        if ok and not any then
          ok = want[e[1]] or (want['disputed'] and e[7] == '1')
        end
        if ok then
          out[#out + 1] = m
          out[#out + 1] = s
          out[#out + 1] = v
          n = n + 1
          if n >= limit then
            return {out, ''}
          end
        end
      end
    end
    if read >= budget then
      return {out, s .. ' ' .. m}
    end
  end
  offset = offset + #page / 2
end
