-- A provider's notification, verified by the gateway: queued once for billing, however often it
-- arrives.  KEYS: 1 pk:{L}:notified (set of notification ids)  2 pk:{L}:provider (stream)
-- ARGV: 1 notification id  2 retention (s)  3.. stream fields and values
-- Returns {'queued'} | {'dup'}
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then
  return {'dup'}
end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
local x = {'XADD', KEYS[2], 'MAXLEN', '~', '100000', '*'}
for i = 3, #ARGV do
  x[#x + 1] = ARGV[i]
end
redis.call(unpack(x))
return {'queued'}
