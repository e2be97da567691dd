-- The bills of a lot whose next step is due, each pushed back by a lease so that another billing
-- process polling at the same moment does not take it too (bill_step decides what the step is).
-- KEYS: 1 due   ARGV: 1 now  2 lease (s)  3 limit
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local until_ = tonumber(ARGV[1]) + tonumber(ARGV[2])
for _, seq in ipairs(due) do
  redis.call('ZADD', KEYS[1], until_, seq)
end
return due
