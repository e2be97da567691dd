-- Shared by every script: the head of the Redis Functions library (cmake/EmbedLua.cmake), run
-- once when the library is loaded, not on every call.  Each script is a function of the library
-- whose callback first calls call_begin (at the end of this file).
-- Records are strings of fields joined by the unit separator \31 (plates, ids and display texts
-- never contain it).  An answer is the tuple
--   decision, reason, match, session_id, bill_id, amount, currency, display
-- stored as it was first given, so a replay renders byte for byte the same JSON.
local US = '\31'

-- The keys and arguments of the running call (set by call_begin): the library's code reads them
-- as the scripts read the globals KEYS and ARGV (a library may not have globals).
local KEYS, ARGV

local function split(s)
  local out, i = {}, 1
  while true do
    local j = string.find(s, US, i, true)
    if not j then
      out[#out + 1] = string.sub(s, i)
      return out
    end
    out[#out + 1] = string.sub(s, i, j - 1)
    i = j + 1
  end
end

-- The key prefix of a lot, 'pk:{L}:', from any of its keys.  Scripts reach the lot's bucket keys
-- (open sessions, fold index, idempotency records) and its meta hash from it: they are not among
-- the KEYS, but share the lot's hash tag and so its slot (docs/redis.md, "Buckets").
local function lot_prefix(key)
  return string.match(key, '^(pk:{[^}]*}:)')
end

local function str_hash(s)
  local h = 0
  for i = 1, #s do
    h = (h * 31 + string.byte(s, i)) % 16777213
  end
  return h
end

-- Linear hashing (docs/redis.md, "Buckets"): a table of records spread over the hashes
-- base:0, base:1, ... that grows a bucket at a time, so its buckets stay listpacks (under
-- hash-max-listpack-entries 128) whatever the number of records: n = LH_BASE * 2^level buckets
-- are addressed by hash % n, those below the split pointer by hash % 2n.  When a record lands in a
-- bucket holding more than LH_MAX, the bucket at the pointer is split (its records whose
-- hash % 2n moved go to bucket pointer + n) and the pointer moves on.  The state of every table
-- of a lot is a field of pk:{L}:meta named after the table (`fold` for the fold index, the day's
-- key pk:{L}:idem:<day> for a day's idempotency records), level * 2^32 + split, so one read gives
-- them all; it is written only by a split (a write costs more than a read in a script: it goes to
-- the AOF).  A table never shrinks.  Strings are few here: Lua interns each one it makes.
local LH_BASE, LH_MAX = 16, 96

-- States read in this call, by f (every change goes through them; reset by call_begin).
local lh_states = {}

-- Reads the states of tables of the lot at once (fs: their field prefixes, the first n of fs, all
-- by default; the fields after them are other fields of the meta hash read along).  Returns what
-- HMGET answered.
local function lh_preload(prefix, fs, n)
  local v = redis.call('HMGET', prefix .. 'meta', unpack(fs))
  for i = 1, n or #fs do
    local f, x = fs[i], tonumber(v[i])
    lh_states[f] = x and {f = f, level = math.floor(x / 4294967296), split = x % 4294967296,
                          new = false} or false
  end
  return v
end

-- Values read or written in this call (reset by call_begin), so that a call reads each once: the
-- number of open sessions of a lot, by prefix (occupancy, open_put, open_del, idem_check), and a
-- fold index entry, by prefix .. fold key (false: none; fold_seqs, fold_add, fold_remove).  Every
-- write of those goes through these functions.
local occ_of, fold_of = {}, {}

local function lh_load(prefix, f)
  if lh_states[f] == nil then
    lh_preload(prefix, {f})
  end
  return lh_states[f] or nil
end

-- The state of a table, a new one (saved by lh_grow) when there is none.
local function lh_open(prefix, f)
  local st = lh_load(prefix, f)
  if not st then
    st = {f = f, level = 0, split = 0, new = true}
    lh_states[f] = st
  end
  return st
end

-- Numbers are written into keys and arguments with string.format('%d'): `..` and tostring()
-- format a number with '%.14g', and redis.call() one given as a number with '%.17g', both of which
-- cost far more than an integer's digits (they are the same digits for the integers here).
local function lh_bucket(base, st, h)
  local n = LH_BASE * 2 ^ st.level
  local b = h % n
  if b < st.split then
    b = h % (2 * n)
  end
  return string.format('%s:%d', base, b)
end

-- A record was added to `bucket`: split the bucket at the pointer if that one is too full.
-- hash_of gives a field's hash; a bucket made by a split gets the expiry of the bucket it comes
-- from when with_ttl.
local function lh_grow(prefix, base, st, bucket, hash_of, with_ttl)
  if st.new then
    redis.call('HSET', prefix .. 'meta', st.f, 0)
    st.new = false
  end
  if redis.call('HLEN', bucket) <= LH_MAX then
    return
  end
  local n = LH_BASE * 2 ^ st.level
  local from, to = base .. ':' .. st.split, base .. ':' .. (st.split + n)
  local flat = redis.call('HGETALL', from)
  local put, gone = {'HSET', to}, {'HDEL', from}
  local function flush()
    if #gone > 2 then
      redis.call(unpack(put))
      redis.call(unpack(gone))
      put, gone = {'HSET', to}, {'HDEL', from}
    end
  end
  for i = 1, #flat, 2 do
    if hash_of(flat[i]) % (2 * n) ~= st.split then
      put[#put + 1] = flat[i]
      put[#put + 1] = flat[i + 1]
      gone[#gone + 1] = flat[i]
      if #gone > 200 then
        flush() -- unpack() takes a few thousand values at most
      end
    end
  end
  flush()
  if with_ttl and redis.call('EXISTS', to) == 1 then
    local pttl = redis.call('PTTL', from)
    if pttl > 0 then
      redis.call('PEXPIRE', to, pttl)
    end
  end
  st.split = st.split + 1
  if st.split == n then
    st.level, st.split = st.level + 1, 0
  end
  redis.call('HSET', prefix .. 'meta', st.f, string.format('%d', st.level * 4294967296 + st.split))
end

-- Idempotency: the record of (device, event_id) lives in the day tables of KEYS[first..last]
-- (pk:{L}:idem:<day>, today's first, a UTC day number): buckets pk:{L}:idem:<day>:<n>, each
-- expiring `ttl` after its first record (a bucket made by a split: with the one it came from).
-- A record's field is the gateway's 12-byte digest of device\nevent_id, its value the 8-byte
-- body hash then the answer, compact when the script gave a context it can be rebuilt from
-- (idem_pack).  Same hash: the first answer; another hash: a conflict.
local function idem_hash(f)
  local b1, b2, b3 = string.byte(f, 1, 3)
  return ((b1 or 0) * 256 + (b2 or 0)) * 256 + (b3 or 0)
end

-- An entry's answer that opened a session is rebuilt from what the same request always gives
-- (ctx: the lot and the display of an opening, ARGV of the entry script) and the session number:
-- a byte for the reason (\1 entry, \2 pass, \3 exempt), then the number.  Anything else is kept
-- whole (it starts with its decision, a letter).  A compact form is kept only when it rebuilds
-- the answer byte for byte.
local IDEM_REASONS = {entry = '\1', pass = '\2', exempt = '\3'}
local IDEM_REASON_OF = {['\1'] = 'entry', ['\2'] = 'pass', ['\3'] = 'exempt'}

local function idem_unpack(ans, ctx)
  local reason = IDEM_REASON_OF[string.sub(ans, 1, 1)]
  if not reason then
    return ans
  end
  if not ctx then
    error('a compact idempotency answer needs its context')
  end
  return table.concat({'open', reason, '', ctx.lot .. '~' .. string.sub(ans, 2), '', '', '',
                       ctx.display}, US)
end

-- ctx.reason and ctx.seq: the opening the answer is thought to be (set by the entry script).
local function idem_pack(answer, ctx)
  local code = ctx and ctx.seq and IDEM_REASONS[ctx.reason or '']
  if code then
    local c = code .. ctx.seq
    if idem_unpack(c, ctx) == answer then
      return c
    end
  end
  return answer
end

local function idem_check(first, last, f, bh, ctx)
  if last < first then
    return nil
  end
  local prefix = lot_prefix(KEYS[first])
  local h = idem_hash(f)
  local fs = {'fold'} -- the fold index's state comes along: most scripts want it
  for i = first, last do
    fs[#fs + 1] = KEYS[i]
  end
  local n = #fs
  fs[n + 1] = 'occ' -- and the number of open sessions (occupancy)
  occ_of[prefix] = tonumber(lh_preload(prefix, fs, n)[n + 1] or '0')
  for i = first, last do
    local st = lh_states[KEYS[i]]
    local v = st and redis.call('HGET', lh_bucket(KEYS[i], st, h), f)
    if v then
      if string.sub(v, 1, #bh) == bh then
        return {'dup', idem_unpack(string.sub(v, #bh + 1), ctx)}
      end
      return {'conflict'}
    end
  end
  return nil
end

local function idem_store(key, f, bh, answer, ttl, ctx)
  local prefix = lot_prefix(key)
  local st = lh_open(prefix, key)
  if st.new then
    -- A new day: the states of days no longer looked up go (a week of them, in case the
    -- gateway was stopped for days).
    local day, kept = tonumber(string.sub(key, #prefix + 6)), math.floor(ttl / 86400)
    if day then
      local q = {'HDEL', prefix .. 'meta'}
      for d = day - kept - 7, day - kept - 1 do
        q[#q + 1] = prefix .. 'idem:' .. d
      end
      redis.call(unpack(q))
    end
  end
  local bucket = lh_bucket(key, st, idem_hash(f))
  local added = redis.call('HSET', bucket, f, bh .. idem_pack(answer, ctx))
  if added == 1 or st.new then
    -- NX: only a bucket without an expiry gets one (a new bucket; one made by a split has its
    -- parent's), in one call where TTL then EXPIRE took two.
    redis.call('EXPIRE', bucket, string.format('%d', ttl), 'NX')
    lh_grow(prefix, key, st, bucket, idem_hash, true)
  end
end

-- The fold index: fold key -> space-separated seqs of the open sessions whose plate folds to it,
-- a linear hash table pk:{L}:fold:<n> (state in pk:{L}:meta `fold`).
local function fold_seqs(prefix, fold)
  local out = {}
  local v = fold_of[prefix .. fold]
  if v == nil then
    local st = lh_load(prefix, 'fold')
    v = st and redis.call('HGET', lh_bucket(prefix .. 'fold', st, str_hash(fold)), fold) or false
    fold_of[prefix .. fold] = v
  end
  if v then
    for seq in string.gmatch(v, '%S+') do
      out[#out + 1] = seq
    end
  end
  return out
end

local function fold_add(prefix, fold, seq)
  local st = lh_open(prefix, 'fold')
  local key = lh_bucket(prefix .. 'fold', st, str_hash(fold))
  local v = fold_of[prefix .. fold]
  if v == nil then
    v = redis.call('HGET', key, fold)
  end
  if v then
    fold_of[prefix .. fold] = v .. ' ' .. seq
    redis.call('HSET', key, fold, fold_of[prefix .. fold])
  else
    fold_of[prefix .. fold] = seq
    redis.call('HSET', key, fold, seq)
    lh_grow(prefix, prefix .. 'fold', st, key, str_hash, false)
  end
end

local function fold_remove(prefix, fold, seq)
  local st = lh_load(prefix, 'fold')
  if not st then
    return
  end
  local key = lh_bucket(prefix .. 'fold', st, str_hash(fold))
  local v = fold_of[prefix .. fold]
  if v == nil then
    v = redis.call('HGET', key, fold)
  end
  if v == seq then
    fold_of[prefix .. fold] = false
    redis.call('HDEL', key, fold)
  elseif v then
    local left = {}
    for s in string.gmatch(v, '%S+') do
      if s ~= seq then
        left[#left + 1] = s
      end
    end
    fold_of[prefix .. fold] = table.concat(left, ' ')
    redis.call('HSET', key, fold, fold_of[prefix .. fold])
  end
end

-- An open session record: plate US entry_ts US lane US class US tariff_version US flags US fold
local function parse_session(rec)
  local f = split(rec)
  return {plate = f[1], entry = f[2], lane = f[3], class = f[4], tver = f[5], flags = f[6],
          fold = f[7]}
end

-- Open sessions live 64 to a bucket, pk:{L}:open:<seq / 64>, field seq % 64, in a compact form
-- (open_pack); scripts and the gateway see the record above, rebuilt by open_get.  The number of
-- open sessions is pk:{L}:meta `occ`.
local function open_slot(prefix, seq)
  local n = tonumber(seq)
  return string.format('%sopen:%d', prefix, math.floor(n / 64)), string.format('%d', n % 64)
end

-- The lot's dictionary of lanes, classes, tariff versions and flags (meta `d>name` -> code,
-- `d<code` -> name, `dn` the last code): one byte each in a compact record.
local dict_names = {}
-- The codes of names (a list), added to the dictionary as needed; nil when it is full.
local function dict_codes(prefix, names)
  local meta = prefix .. 'meta'
  local q = {'HMGET', meta}
  for i, name in ipairs(names) do
    q[i + 2] = 'd>' .. name
  end
  local c = redis.call(unpack(q))
  for i, name in ipairs(names) do
    local code = tonumber(c[i])
    if not code then
      code = tonumber(redis.call('HGET', meta, 'dn') or '0') + 1
      if code > 255 then
        return nil
      end
      redis.call('HSET', meta, 'dn', code, 'd>' .. name, code, 'd<' .. code, name)
      for k = i + 1, #names do
        if names[k] == name then
          c[k] = code
        end
      end
    end
    c[i] = code
    dict_names[code] = name
  end
  return c
end

-- The fold key of a plate as cmn_plate_fold_key makes it (province folded); a record keeps its
-- fold key only when this gives another.
local FOLD = {D = '0', Q = '0', O = '0', B = '8', I = '1', T = '1', S = '5', Z = '2', G = '6',
              ['4'] = 'A'}
local function plate_fold(plate)
  local head, rest = '', plate
  local b = string.byte(plate, 1)
  if b and b >= 0x80 then
    local n = (b >= 0xF0 and 4) or (b >= 0xE0 and 3) or (b >= 0xC0 and 2) or 1
    head, rest = '*', string.sub(plate, n + 1)
  end
  return head .. (string.gsub(rest, '%w', FOLD))
end

-- Compact record: entry ts (4 bytes, big-endian), the dictionary codes of lane, class, tariff
-- version and flags (a byte each), the plate, then US and the fold key if plate_fold does not give
-- it.  A record that does not fit (a ts before 2004 or past 2106, a full dictionary) is kept as
-- US then the record itself; a compact one starts with the ts's first byte, >= 0x40.
local function open_unpack(prefix, v)
  if string.sub(v, 1, 1) == US then
    return string.sub(v, 2)
  end
  local b1, b2, b3, b4, c1, c2, c3, c4 = string.byte(v, 1, 8)
  local ts = ((b1 * 256 + b2) * 256 + b3) * 256 + b4
  local plate, fold
  local i = string.find(v, US, 9, true)
  if i then
    plate, fold = string.sub(v, 9, i - 1), string.sub(v, i + 1)
  else
    plate = string.sub(v, 9)
    fold = plate_fold(plate)
  end
  if not (dict_names[c1] and dict_names[c2] and dict_names[c3] and dict_names[c4]) then
    local v = redis.call('HMGET', prefix .. 'meta', string.format('d<%d', c1),
                         string.format('d<%d', c2), string.format('d<%d', c3),
                         string.format('d<%d', c4))
    dict_names[c1], dict_names[c2], dict_names[c3], dict_names[c4] = v[1], v[2], v[3], v[4]
  end
  return table.concat({plate, string.format('%d', ts), dict_names[c1] or '',
                       dict_names[c2] or '', dict_names[c3] or '', dict_names[c4] or '', fold},
                      US)
end

-- f: the record's fields (rec split at US).  open_unpack gives rec back exactly: the names come
-- back from the dictionary as they went in, the ts is written as it was read (checked), and the
-- plate, which ends at the first US, has none.
local function open_pack(prefix, rec, f)
  local ts = tonumber(f[2] or '')
  if #f == 7 and ts and ts >= 1073741824 and ts < 4294967296 and
     string.format('%d', ts) == f[2] and not string.find(f[1], US, 1, true) then
    local c = dict_codes(prefix, {f[3], f[4], f[5], f[6]})
    if c then
      local v = string.char(math.floor(ts / 16777216), math.floor(ts / 65536) % 256,
                            math.floor(ts / 256) % 256, ts % 256, c[1], c[2], c[3], c[4]) .. f[1]
      if plate_fold(f[1]) ~= f[7] then
        v = v .. US .. f[7]
      end
      return v
    end
  end
  return US .. rec
end

local function open_get(prefix, seq)
  local key, field = open_slot(prefix, seq)
  local v = redis.call('HGET', key, field)
  return v and open_unpack(prefix, v)
end

-- rec: the record, as text or as its list of 7 fields.  Returns the number of open sessions.
local function open_put(prefix, seq, rec)
  local f = rec
  if type(rec) == 'table' then
    rec = table.concat(f, US)
  else
    f = split(rec)
  end
  local key, field = open_slot(prefix, seq)
  if redis.call('HSET', key, field, open_pack(prefix, rec, f)) == 1 then
    occ_of[prefix] = redis.call('HINCRBY', prefix .. 'meta', 'occ', '1')
    return occ_of[prefix]
  end
  return tonumber(redis.call('HGET', prefix .. 'meta', 'occ'))
end

local function open_del(prefix, seq)
  local key, field = open_slot(prefix, seq)
  if redis.call('HDEL', key, field) == 1 then
    occ_of[prefix] = redis.call('HINCRBY', prefix .. 'meta', 'occ', '-1')
  end
end

local function occupancy(prefix)
  if occ_of[prefix] == nil then
    occ_of[prefix] = tonumber(redis.call('HGET', prefix .. 'meta', 'occ') or '0')
  end
  return occ_of[prefix]
end

-- Bumps the counters of a lot-day: ARGV-style list "field=delta,field=delta".  The deltas go to
-- HINCRBY as written: the callers write them as integers ('%d'), which is what tonumber() then
-- redis.call() would have sent.
local function count(day_key, list)
  if list == '' then
    return
  end
  for field, delta in string.gmatch(list, '([^=,]+)=(%-?%d+)') do
    redis.call('HINCRBY', day_key, field, delta)
  end
end

-- Money of a lot-day (docs/redis.md, "Money").  A bill is counted in the lot-day of its exit (the
-- record's `day`), and the part of its amount not refunded sits in exactly one bucket of that
-- lot-day (the record's `mb`: outstanding, overdue, defaulted, paid, paid_late, paid_on_site or
-- waived), the refunded part in `refunded`, so on every lot-day at every moment
--   billed = paid + paid_late + paid_on_site + outstanding + overdue + defaulted + waived
--            + refunded
-- Every script that changes a bill's status moves its money in the same step.  A script touches
-- only the keys it is given, so the caller names the lot-day's key; a caller that does not know
-- the bill's day passes pk:{L}:day:- and is answered {'day', date} with nothing changed.

-- 'ok' when day_key is the bill's lot-day, 'none' for a record without accounting (a bill made
-- before it existed: its later moves are not counted), else the day the caller must name.
local function money_day(rec, day_key)
  if not day_key then
    error('the bill\'s lot-day key is missing')
  end
  local f = redis.call('HMGET', rec, 'day', 'mb')
  if not f[1] or not f[2] then
    return 'none'
  end
  if string.sub(day_key, -(#f[1] + 5)) ~= ':day:' .. f[1] then
    return f[1]
  end
  return 'ok'
end

-- A bill or a payment on site is made: `amount` billed, in bucket `to`, in the lot-day day_key
-- (whose `billed` the caller counts, or not, with `with_billed`).
local function money_new(day_key, rec, to, amount, with_billed)
  local day = string.match(day_key, ':day:([^:]+)$')
  if with_billed then
    redis.call('HINCRBY', day_key, 'billed', amount)
  end
  redis.call('HINCRBY', day_key, to, amount)
  redis.call('HSET', rec, 'day', day, 'mb', to)
end

-- The bill's money not refunded moves to bucket `to` (its status changed).
local function money_move(day_key, rec, to)
  local f = redis.call('HMGET', rec, 'mb', 'amount', 'refunded_amount')
  if f[1] == to then
    return
  end
  local left = tonumber(f[2] or '0') - tonumber(f[3] or '0')
  if left ~= 0 then
    redis.call('HINCRBY', day_key, f[1], -left)
    redis.call('HINCRBY', day_key, to, left)
  end
  redis.call('HSET', rec, 'mb', to)
end

-- `amount` of a paid bill is refunded.
local function money_refund(day_key, rec, amount)
  redis.call('HINCRBY', day_key, redis.call('HGET', rec, 'mb'), -amount)
  redis.call('HINCRBY', day_key, 'refunded', amount)
end

-- The bill's amount changes by delta (a bill recomputed after a correction): billed and its
-- bucket follow.
local function money_adjust(day_key, rec, delta)
  redis.call('HINCRBY', day_key, 'billed', delta)
  redis.call('HINCRBY', day_key, redis.call('HGET', rec, 'mb'), delta)
end

-- Starts a call of one of the library's functions.  The library's upvalues outlive the call, so
-- whatever a call keeps in them is reset here: the tables' states (another call may have split a
-- table since), the values read (occ_of, fold_of: another call may have changed them) and the
-- dictionary names (they are a lot's: the next call may be another lot's).
-- Everything else at the library's level is constant (US, LH_BASE, LH_MAX, IDEM_REASONS,
-- IDEM_REASON_OF, FOLD, default_lib's ARREARS_UNPAID) or a function.
local function call_begin(keys, args)
  KEYS, ARGV = keys, args
  lh_states = {}
  occ_of, fold_of = {}, {}
  dict_names = {}
end
