-- The Redis work of one exit decision in a single script call, for redis-benchmark (bench/run):
--
--   redis-benchmark -c 50 -n N -r 100000 EVALSHA <sha> 0 __rand_int__ <1000-byte explanation>
--
-- It runs as many commands of each kind, on keys and values of the same sizes, as one credit_ok
-- exit makes Redis run today through `exit_lookup` + `HGETALL`, `exit_commit`, `driver_bill` and
-- `plate_mirror` (bench/RESULTS.md, section 2: 23 HGET, 12 HINCRBY, 5 HSET, 3 HDEL, one each of
-- HGETALL, HMGET, EXISTS, SISMEMBER, HSETNX, TTL and XADD), so its rate is what Redis could do
-- if an exit were one round trip.  Keys are spread over 64 lots; the session, driver and plate
-- come from the random number.  A benchmark's shape only: it decides nothing.
local n = tonumber(ARGV[1]) or 0
local expl = ARGV[2] or ''
local L = 'x:{L' .. (n % 64) .. '}:'
local D = 'x:drv:{d' .. n .. '}'
local P = 'x:plate:{p' .. n .. '}'
local f = 'bench-x-out\nout-' .. n

-- exit_lookup: the idempotency buckets, the fold index, the open session, a held record.
for d = 1, 8 do
  redis.call('HGET', L .. 'idem:' .. d, f)
end
redis.call('HGET', L .. 'fold', n)
redis.call('HGET', L .. 'open', n)
redis.call('HGET', L .. 'held', n)
-- The plate index bucket, pipelined with it.
redis.call('HGETALL', P)

-- exit_commit: the idempotency buckets again, the session as read, closing it, the bill.
for d = 1, 8 do
  redis.call('HGET', L .. 'idem:' .. d, f)
end
redis.call('HGET', L .. 'open', n)
redis.call('HGET', L .. 'fold', n)
redis.call('HDEL', L .. 'open', n)
redis.call('HDEL', L .. 'held', n)
redis.call('HDEL', L .. 'fold', n)
local s = L .. 's:' .. n
redis.call('HSET', s, 'id', 'BENCH-X~' .. n, 'session', 'BENCH-X~' .. n, 'plate', '浙A12345',
  'read_plate', '浙A12345', 'lot', 'BENCH-X', 'lane_in', 'in', 'lane_out', 'out',
  'entry', '1795739764', 'exit', '1795772902', 'class', 'small', 'tariff', 'hz-core-2024',
  'tariff_version', '50f2a9d271fffe17', 'amount', '5000', 'currency', 'CNY', 'reason',
  'credit_ok', 'match', 'exact', 'driver', 'bd-' .. n, 'provider', 'stripe-bench',
  'bill', 'BENCH-X~' .. n .. '~b', 'explanation', expl, 'closed_at', '1795772902',
  'device_out', 'bench-x-out', 'event_out', 'out-' .. n, 'status', 'pending')
redis.call('HSET', s, 'day', '2026-11-27', 'mb', 'outstanding')
redis.call('XADD', L .. 'bills', 'MAXLEN', '~', '10000', '*', 'bill', 'BENCH-X~' .. n .. '~b',
  'lot', 'BENCH-X', 'driver', 'bd-' .. n, 'provider', 'stripe-bench', 'amount', '5000',
  'currency', 'CNY')
for i = 1, 8 do
  redis.call('HINCRBY', L .. 'day', 'c' .. i, 1)
end
redis.call('HSET', L .. 'idem:1', f, '9a9fdffad6bfb2dc\31' .. string.sub(expl, 1, 160))
redis.call('TTL', L .. 'idem:1')

-- driver_bill: the bill applied once to the driver's record.
redis.call('EXISTS', D)
redis.call('SISMEMBER', D .. ':applied', 'b' .. n)
redis.call('HSETNX', D .. ':unpaid', 'BENCH-X~' .. n .. '~b', 5000)
redis.call('HINCRBY', D, 'unpaid_count', 1)
redis.call('HINCRBY', D, 'unpaid_amount', 5000)
redis.call('HINCRBY', D, 'ver', 1)
redis.call('HINCRBY', D, 'updated_at', 1)
redis.call('HMGET', D, 'id', 'plates', 'provider', 'score', 'suspended', 'eligibility',
  'unpaid_count', 'unpaid_amount', 'ver')
redis.call('HSET', D, 'updated_at', '1795772902')

-- plate_mirror: the plate's copy of the record, replaced if newer.
redis.call('HGET', P, '浙A12345')
redis.call('HGET', P, '浙A12345')
redis.call('HSET', P, '浙A12345', 'bd-' .. n .. '\31' .. '2\31' .. '700\31' .. '0\31' ..
  'NORMAL\31' .. '1\31' .. '5000\31' .. 'stripe-bench')
return 1
