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
local outcome, seq, expected = ARGV[3], ARGV[4], ARGV[5]

-- The idempotency record.  An outcome on a session (close, hold, synthetic_*: they carry the seq
-- exit_lookup gave) comes right after exit_lookup of the same request found no record in any of
-- the day tables.  A record made since was made by another commit of the same event that ran
-- between the two calls, in the table of the day of its gateway's clock at that moment: a day
-- from the lookup's to this call's, i.e. today's, or yesterday's when the day turned between the
-- calls (KEYS 8 and 9, from the gateway's clock when it sent this call).  The older tables have
-- not gained it: their days ended before the lookup (the gateways' clocks agree to well within a
-- day; with a clock that far off, reading all of them would miss the record in a later day's
-- table just the same).  So only those two are read again.  An outcome 'none' may come without a
-- lookup (an unreadable plate): every table is read.
local last = #KEYS
if outcome ~= 'none' and last > 9 then
  last = 9
end
local seen = idem_check(8, last, ARGV[1], ARGV[2])
if seen then
  return seen
end

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
  -- The fields go to HSET straight from ARGV rather than through a copy (the explanation alone is
  -- about a kilobyte), followed by the status, which is put at the end of ARGV for the call and
  -- taken off again.
  local n = #ARGV
  ARGV[n + 1], ARGV[n + 2] = 'status', ARGV[7]
  redis.call('HSET', KEYS[7], unpack(ARGV, 14, n + 2))
  ARGV[n + 1], ARGV[n + 2] = nil, nil
  if ARGV[7] ~= 'pending' then
    redis.call('EXPIRE', KEYS[7], ARGV[11]) -- an integer ('%d'), as tonumber() would send it
  else
    -- A bill: billed and owed from now, in the lot-day of its exit.
    money_new(KEYS[4], KEYS[7], 'outstanding', tonumber(field('amount') or '0'), true)
  end
  if ARGV[13] ~= '' then
    redis.call('XADD', KEYS[5], '*', unpack(split(ARGV[13])))
  end
end

if outcome == 'close' then
  local s = parse_session(expected)
  -- The stay, for the lot-day's average (an exit timed before its entry is a stay of 0).
  local stay = tonumber(field('exit') or '0') - tonumber(s.entry or '0')
  redis.call('HINCRBY', KEYS[4], 'stays', '1')
  redis.call('HINCRBY', KEYS[4], 'stay_s', string.format('%d', stay > 0 and stay or 0))
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
  redis.call('XADD', KEYS[6], 'MAXLEN', '~', '100000', '*', 'kind', ARGV[12], unpack(ARGV, 14))
end
-- `billed` is counted with the bill's bucket above, from the record's amount, so that both
-- sides of the lot-day's identity come from one number.  When record() counted it (a bill), the
-- counters' `billed` would add 0 to a field that exists: left out.  Otherwise it adds 0 as before
-- (which makes the field when it is missing).
local billed = 'billed=0'
if ARGV[7] == 'pending' and (outcome == 'close' or outcome == 'synthetic_close') then
  billed = ''
end
count(KEYS[4], (string.gsub(ARGV[9], 'billed=%-?%d+', billed)))
idem_store(KEYS[8], ARGV[1], ARGV[2], ARGV[6], tonumber(ARGV[10]))
return {'ok', ARGV[6]}
