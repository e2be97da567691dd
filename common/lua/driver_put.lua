-- Creates or updates a driver (admin API).  Counters and credit history are kept on update.
-- KEYS: 1 pk:drv:{D}
-- ARGV: 1 driver id  2 plates (space-separated, normalised)  3 provider  4 payment reference
--       5 score ('' keeps the current one)  6 now  7 the score of a new driver without one
-- Returns {'ok', snapshot, old plates}
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
return {'ok', snapshot(key), old}
