-- First round trip of an exit: the idempotency record, then the open session the read belongs to.
-- Reads only, apart from reserving a session number for an exit without entry.
-- KEYS: 1 open  2 fold  3 held  4 tariffs  5 meta  6 runtime passes (pk:{L}:passes)
--       7 runtime allow-list (pk:{L}:allow)  8.. idempotency day buckets
-- ARGV: 1 idempotency field (12-byte digest)  2 body hash (8 bytes)  3 plate  4 fold key  5 match level: exact|candidates|fuzzy
--       6 the tariff version the gateway has for this lot  7 reserve a number when nothing matches
--       (1/0)  8 the exit's local date (YYYY-MM-DD)  9 number of candidates, then candidate
--       plate, candidate fold key, ...
-- Returns {'dup', answer} | {'conflict'}
--       | {'match', kind, seq, record, held or '', tariff JSON or '', runtime pass 1|0}
--       | {'none', why, reserved seq or ''}
-- A runtime pass (lane_access, docs/api.md) of the session's plate or of the read counts like one
-- of the configuration.
local P = lot_prefix(KEYS[1])
local seen = idem_check(8, #KEYS, ARGV[1], ARGV[2])
if seen then
  return seen
end
local plate, fold, level = ARGV[3], ARGV[4], ARGV[5]

local function has_pass(p)
  if redis.call('SISMEMBER', KEYS[7], p) == 1 then
    return true
  end
  local v = redis.call('HGET', KEYS[6], p)
  local from, to = string.match(v or '', '^([^|]*)|([^|]*)$')
  return from ~= nil and from <= ARGV[8] and ARGV[8] <= to
end

-- s: rec parsed.
local function found(kind, seq, rec, s)
  local tariff = ''
  if s.tver ~= ARGV[6] then
    tariff = redis.call('HGET', KEYS[4], s.tver) or ''
  end
  -- The session's plate, then the read's unless it is the same (an exact match).
  local pass = 0
  if has_pass(s.plate) or (plate ~= s.plate and has_pass(plate)) then
    pass = 1
  end
  return {'match', kind, seq, rec, redis.call('HGET', KEYS[3], seq) or '', tariff, pass}
end

local bucket = {}
for _, seq in ipairs(fold_seqs(P, fold)) do
  local rec = open_get(P, seq)
  if rec then
    local s = parse_session(rec)
    if s.plate == plate then
      return found('exact', seq, rec, s)
    end
    bucket[#bucket + 1] = {seq, rec, s}
  end
end

if level ~= 'exact' then
  local n = tonumber(ARGV[9])
  for i = 0, n - 1 do
    local cplate, cfold = ARGV[10 + 2 * i], ARGV[11 + 2 * i]
    for _, seq in ipairs(fold_seqs(P, cfold)) do
      local rec = open_get(P, seq)
      local s = rec and parse_session(rec)
      if s and s.plate == cplate then
        return found('candidate', seq, rec, s)
      end
    end
  end
end

-- Plates that fold to the same key differ only in confusable characters (0/D/Q, 8/B, ...) or the
-- province character.  Such a match counts only when it is the only one in the lot.
local why = 'no_match'
if level == 'fuzzy' then
  if #bucket == 1 then
    return found('fuzzy', bucket[1][1], bucket[1][2], bucket[1][3])
  elseif #bucket > 1 then
    why = 'ambiguous'
  end
end
local reserved = ''
if ARGV[7] == '1' then
  reserved = string.format('%d', redis.call('HINCRBY', KEYS[5], 'seq', '1'))
end
return {'none', why, reserved}
