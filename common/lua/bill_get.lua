-- A bill with its history, for staff.  KEYS: 1 bill record  2 history
return {redis.call('HGETALL', KEYS[1]), redis.call('LRANGE', KEYS[2], 0, -1)}
