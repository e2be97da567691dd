-- A page of one audit stream, newest first (docs/api.md): entries from a position back to a time,
-- filtered by actor and action, at most `limit`, reading at most `budget` entries.
-- KEYS: 1 the stream (pk:{L}:audit or pk:drv:{D}:audit)
-- ARGV: 1 newest id to read ('+' for the end)  2 '1' when that id itself is excluded
--       3 oldest id to read ('-' for the start)  4 limit  5 actor ('' : any)  6 action ('' : any)
--       7 budget
-- Returns {{{id, fields}, ...}, horizon}: horizon is the id of the last entry read when the
-- budget ran out before the start, else ''.
local start = ARGV[2] == '1' and ('(' .. ARGV[1]) or ARGV[1]
local limit, budget = tonumber(ARGV[4]), tonumber(ARGV[7])
local out, read = {}, 0
while true do
  local page = redis.call('XREVRANGE', KEYS[1], start, ARGV[3], 'COUNT', 200)
  if #page == 0 then
    return {out, ''}
  end
  for _, e in ipairs(page) do
    read = read + 1
    local h = {}
    for i = 1, #e[2], 2 do
      h[e[2][i]] = e[2][i + 1]
    end
    if (ARGV[5] == '' or h['actor'] == ARGV[5]) and (ARGV[6] == '' or h['action'] == ARGV[6]) then
      out[#out + 1] = e
      if #out >= limit then
        return {out, ''}
      end
    end
    if read >= budget then
      return {out, e[1]}
    end
    start = '(' .. e[1]
  end
end
