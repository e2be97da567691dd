-- A bill now owed by the driver: counted once however often it is applied (the gateway applies it
-- right after the exit, billing again when it takes the bill, and replays are harmless).
-- KEYS: 1 pk:drv:{D}  2 pk:drv:{D}:unpaid  3 pk:drv:{D}:applied  4 pk:drv:{D}:bills (optional:
--       every bill of the driver by the time it was first applied, for GET /v1/me/bills)
-- ARGV: 1 bill id  2 amount  3 now
-- Returns {'ok', snapshot, plates, applied 1|0} | {'unknown'}
local key = KEYS[1]
if redis.call('EXISTS', key) == 0 then
  return {'unknown'}
end
if KEYS[4] then
  redis.call('ZADD', KEYS[4], 'NX', ARGV[3], ARGV[1])
end
-- A bill already settled (billing got there first) is not owed again.
local applied = 0
if redis.call('SISMEMBER', KEYS[3], ARGV[1] .. ':settled') == 0 then
  applied = redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2])
end
if applied == 1 then
  -- Numbers as the gateway and billing write them (integers, '%d'): what tonumber() then
  -- redis.call() would have sent.
  redis.call('HINCRBY', key, 'unpaid_count', '1')
  redis.call('HINCRBY', key, 'unpaid_amount', ARGV[2])
  redis.call('HSET', key, 'updated_at', ARGV[3])
  redis.call('HINCRBY', key, 'ver', '1')
end
local snap, plates = snapshot_plates(key)
return {'ok', snap, plates, applied}
