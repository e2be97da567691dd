-- Second round trip of an exit: apply the decision the gateway made on what exit_lookup returned,
-- provided the session is still as it was read (else 'retry': another lane got there first).
-- KEYS: 1 open  2 fold  3 held  4 day counters  5 bills stream  6 review stream
--       7 record of the session (pk:{L}:s:<seq>)  8.. idempotency day buckets, today's first
-- ARGV: 1 idempotency field (12-byte digest)  2 body hash (8 bytes)  3 outcome  4 seq  5 the record as read ('' for none)
--       6 answer tuple  7 status of the closed record: pending|closed|'' (none)
--       8 held info (outcome hold)  9 counters  10 idempotency ttl  11 record ttl (closed, no bill)
--       12 review kind or ''  13 bill stream fields (US-joined pairs) or ''
--       14.. the closed record's fields and values
-- outcome: close  the session ends (bill pending, or closed: free, pass, exempt)
--          hold   the session stays open, waiting for payment on site (held info)
--          synthetic_close / synthetic_hold   an exit without entry charged by the lot's policy:
--                 a session is made from the exit alone, then closed or held
--          none   nothing but the answer (hold no_entry_record, unreadable, ...)
local P = lot_prefix(KEYS[1])
local seen = idem_check(8, #KEYS, ARGV[1], ARGV[2])
if seen then
  return seen
end
local outcome, seq, expected = ARGV[3], ARGV[4], ARGV[5]

if outcome == 'close' or outcome == 'hold' then
  local rec = open_get(P, seq)
  if rec ~= expected then
    return {'retry'}
  end
end

-- A field of the closed record (ARGV 14.. are field, value pairs).
local function field(name)
  for i = 14, #ARGV - 1, 2 do
    if ARGV[i] == name then
      return ARGV[i + 1]
    end
  end
  return nil
end

local function record()
  local args = {'HSET', KEYS[7]}
  for i = 14, #ARGV do
    args[#args + 1] = ARGV[i]
  end
  args[#args + 1] = 'status'
  args[#args + 1] = ARGV[7]
  redis.call(unpack(args))
  if ARGV[7] ~= 'pending' then
    redis.call('EXPIRE', KEYS[7], tonumber(ARGV[11]))
  else
    -- A bill: billed and owed from now, in the lot-day of its exit.
    money_new(KEYS[4], KEYS[7], 'outstanding', tonumber(field('amount') or '0'), true)
  end
  if ARGV[13] ~= '' then
    local x = {'XADD', KEYS[5], '*'}
    for _, v in ipairs(split(ARGV[13])) do
      x[#x + 1] = v
    end
    redis.call(unpack(x))
  end
end

if outcome == 'close' then
  local s = parse_session(expected)
  -- The stay, for the lot-day's average (an exit timed before its entry is a stay of 0).
  local stay = tonumber(field('exit') or '0') - tonumber(s.entry or '0')
  redis.call('HINCRBY', KEYS[4], 'stays', 1)
  redis.call('HINCRBY', KEYS[4], 'stay_s', stay > 0 and stay or 0)
  open_del(P, seq)
  redis.call('HDEL', KEYS[3], seq)
  fold_remove(P, s.fold, seq)
  record()
elseif outcome == 'hold' then
  redis.call('HSET', KEYS[3], seq, ARGV[8])
elseif outcome == 'synthetic_close' then
  record()
elseif outcome == 'synthetic_hold' then
  local s = parse_session(expected)
  open_put(P, seq, expected)
  fold_add(P, s.fold, seq)
  redis.call('HSET', KEYS[3], seq, ARGV[8])
end

if ARGV[12] ~= '' then
  local x = {'XADD', KEYS[6], 'MAXLEN', '~', '100000', '*', 'kind', ARGV[12]}
  for i = 14, #ARGV do
    x[#x + 1] = ARGV[i]
  end
  redis.call(unpack(x))
end
-- `billed` is counted with the bill's bucket above, from the record's amount, so that both
-- sides of the lot-day's identity come from one number.
count(KEYS[4], (string.gsub(ARGV[9], 'billed=%-?%d+', 'billed=0')))
idem_store(KEYS[8], ARGV[1], ARGV[2], ARGV[6], tonumber(ARGV[10]))
return {'ok', ARGV[6]}
