-- An entry read at a lot, applied whole or not at all.  All keys are the lot's ({lot} hash tag).
-- KEYS: 1 open  2 fold  3 held  4 meta (1, 2: the lot's key prefix, for the buckets)  5 day counters  6 entries stream  7 review stream
--       8 record of the stale session (pk:{L}:s:<seq>, or pk:{L}:s:- when none is known yet)
--       9 runtime passes (pk:{L}:passes)  10 runtime allow-list (pk:{L}:allow)
--       11.. idempotency day buckets, today's first
-- ARGV: 1 idempotency field (12-byte digest)  2 body hash (8 bytes)  3 mode: normal|pass|exempt|blacklisted|unreadable
--       4 plate  5 fold key  6 entry ts  7 lane  8 class  9 tariff version  10 capacity
--       11 stale policy: close_free|close_charged  12 stale seq (second call) or ''
--       13 the stale record as read  14 stale fee  15 stale fee explanation (JSON)
--       16 idempotency ttl (s)  17 lot id  18 display when open  19 display when full
--       20 display when held otherwise  21 now (unix s)  22 device  23 event id
--       24 the entry's local date (YYYY-MM-DD), for runtime passes
-- Returns {'dup', answer} | {'conflict'} | {'stale', seq, record} | {'retry'} | {'ok', answer}
local field, body_hash, mode = ARGV[1], ARGV[2], ARGV[3]
local plate, fold, ts, lane, class, tver = ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local lot = ARGV[17]
local P = lot_prefix(KEYS[1])
-- An opening's answer is rebuilt from these on a replay (idem_pack).
local ctx = {lot = lot, display = ARGV[18]}

local seen = idem_check(11, #KEYS, field, body_hash, ctx)
if seen then
  return seen
end

-- Monthly passes and allow-list entries added at runtime (lane_access, docs/api.md) open like the
-- configuration's, which the gateway already turned into mode 'pass'.
local function runtime_pass(p, date)
  if p == '' or not date then
    return false
  end
  if redis.call('SISMEMBER', KEYS[10], p) == 1 then
    return true
  end
  local v = redis.call('HGET', KEYS[9], p)
  local from, to = string.match(v or '', '^([^|]*)|([^|]*)$')
  return from ~= nil and from <= date and date <= to
end
if mode ~= 'unreadable' and mode ~= 'pass' and runtime_pass(plate, ARGV[24]) then
  mode = 'pass'
end

local function answer(decision, reason, sid, display)
  return table.concat({decision, reason, '', sid, '', '', '', display}, US)
end

local function review(kind, extra)
  local args = {'XADD', KEYS[7], 'MAXLEN', '~', '100000', '*', 'kind', kind, 'lot', lot,
                'lane', lane, 'ts', ts, 'device', ARGV[22], 'event_id', ARGV[23],
                'plate', plate}
  for _, v in ipairs(extra or {}) do
    args[#args + 1] = v
  end
  redis.call(unpack(args))
end

local function finish(ans, counters)
  count(KEYS[5], counters)
  idem_store(KEYS[11], field, body_hash, ans, tonumber(ARGV[16]), ctx)
  return {'ok', ans}
end

if mode == 'unreadable' or mode == 'blacklisted' then
  review(mode)
  return finish(answer('hold', mode, '', ARGV[20]), 'hold:' .. mode .. '=1')
end

-- A plate can have one open session per lot: a second entry closes the stale one by the lot's
-- policy (its exit was missed), and staff see it on the review stream.
local counters = ''
for _, seq in ipairs(fold_seqs(P, fold)) do
  local rec = open_get(P, seq)
  if rec and parse_session(rec).plate == plate then
    -- The gateway needs the record (and for close_charged, the fee) and the key of the stale
    -- session before it can be closed: ask, and be called again.
    local policy = ARGV[11]
    if ARGV[12] ~= seq then
      return {'stale', seq, rec}
    end
    if ARGV[12] == seq and ARGV[13] ~= rec then
      return {'retry'}
    end
    local s = parse_session(rec)
    open_del(P, seq)
    redis.call('HDEL', KEYS[3], seq)
    fold_remove(P, fold, seq)
    local status = 'stale_closed'
    local amount = '0'
    if policy == 'close_charged' then
      status = 'stale_review'
      amount = ARGV[14]
    end
    redis.call('HSET', KEYS[8], 'id', lot .. '~' .. seq, 'plate', s.plate, 'lot', lot,
               'lane_in', s.lane, 'entry', s.entry, 'exit', ts, 'class', s.class,
               'tariff_version', s.tver, 'status', status, 'reason', 'stale_entry',
               'amount', amount, 'explanation', ARGV[15], 'closed_at', ARGV[21])
    review('stale_entry', {'session', lot .. '~' .. seq, 'status', status, 'amount', amount})
    counters = 'stale_closed=1,'
  end
end

if mode == 'normal' and occupancy(P) >= tonumber(ARGV[10]) then
  return finish(answer('hold', 'lot_full', '', ARGV[19]), counters .. 'hold:lot_full=1')
end

local seq = string.format('%d', redis.call('HINCRBY', KEYS[4], 'seq', '1'))
local flags = ''
if mode == 'pass' then
  flags = 'p'
elseif mode == 'exempt' then
  flags = 'e'
end
local occ = open_put(P, seq, {plate, ts, lane, class, tver, flags, fold})
fold_add(P, fold, seq)
local sid = lot .. '~' .. seq
local reason = 'entry'
if mode == 'pass' or mode == 'exempt' then
  reason = mode
end
local peak = tonumber(redis.call('HGET', KEYS[5], 'occupancy_peak') or '0')
if occ > peak then
  redis.call('HSET', KEYS[5], 'occupancy_peak', occ)
end
-- What billing's WeChat Pay consumer needs, no more (the lot is the key's, the session lot~n).
redis.call('XADD', KEYS[6], 'MAXLEN', '~', '100000', '*', 'n', seq, 'plate', plate, 'ts', ts,
           'class', class)
ctx.reason, ctx.seq = reason, seq
return finish(answer('open', reason, sid, ARGV[18]),
              counters .. 'entries=1,open:' .. reason .. '=1')
