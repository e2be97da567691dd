-- Creates or updates a driver (admin API).  Counters and credit history are kept on update.
-- KEYS: 1 pk:drv:{D}  2 pk:drv:{D}:audit (the enrolment is audited there, in the same step)
-- ARGV: 1 driver id  2 plates (space-separated, normalised)  3 provider  4 payment reference
--       5 score ('' keeps the current one)  6 now  7 the score of a new driver without one
--       8 who (role US scope US name)
-- Returns {'ok', snapshot, old plates, audit id}
local key = KEYS[1]
local old = redis.call('HGET', key, 'plates') or ''
local fresh = redis.call('EXISTS', key) == 0
-- The eligibility is a provider's verdict (WeChat Pay's parking state): another provider has given
-- none yet.
if not fresh and redis.call('HGET', key, 'provider') ~= ARGV[3] then
  redis.call('HSET', key, 'eligibility', 'NORMAL')
  redis.call('HDEL', key, 'eligibility_at')
end
redis.call('HSET', key, 'id', ARGV[1], 'plates', ARGV[2], 'provider', ARGV[3],
           'payment_ref', ARGV[4], 'updated_at', ARGV[6])
if fresh then
  redis.call('HSET', key, 'created_at', ARGV[6], 'suspended', '0', 'eligibility', 'NORMAL',
             'unpaid_count', '0', 'unpaid_amount', '0')
end
if ARGV[5] ~= '' then
  redis.call('HSET', key, 'score', ARGV[5])
elseif fresh then
  redis.call('HSET', key, 'score', ARGV[7])
end
redis.call('HINCRBY', key, 'ver', 1)
local id = audit(ARGV[8], tonumber(ARGV[6]), fresh and 'driver_enrol' or 'driver_update', ARGV[1],
                 '', '', {'driver', ARGV[1], 'plates', ARGV[2], 'old_plates', old,
                          'provider', ARGV[3], 'score', redis.call('HGET', key, 'score') or ''})
return {'ok', snapshot(key), old, id}
