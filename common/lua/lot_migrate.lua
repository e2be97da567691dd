-- Moves a lot's open sessions from the layout before the buckets (docs/redis.md: one hash
-- pk:{L}:open, session number -> text record, and one fold hash pk:{L}:fold) into the buckets,
-- at most ARGV[1] records a call, so Redis is never held long; the gateway calls it for each lot
-- when it connects, before it takes lane events, until nothing is left.
-- KEYS: 1 pk:{L}:open  2 pk:{L}:fold   ARGV: 1 records a call
-- Returns the number of records still to move (0: done, or nothing was ever in the old layout).
if redis.call('TYPE', KEYS[1]).ok ~= 'hash' then
  if redis.call('TYPE', KEYS[2]).ok == 'hash' then
    redis.call('DEL', KEYS[2]) -- every session it indexed was moved and indexed again
  end
  return 0
end
local P = lot_prefix(KEYS[1])
local got = redis.call('HSCAN', KEYS[1], 0, 'COUNT', tonumber(ARGV[1]))[2]
for i = 1, #got, 2 do
  local seq, rec = got[i], got[i + 1]
  if not open_get(P, seq) then
    open_put(P, seq, rec)
    fold_add(P, parse_session(rec).fold or '', seq)
  end
  redis.call('HDEL', KEYS[1], seq)
end
local left = redis.call('HLEN', KEYS[1])
if left == 0 and redis.call('TYPE', KEYS[2]).ok == 'hash' then
  redis.call('DEL', KEYS[2])
end
return left
