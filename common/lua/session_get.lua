-- The current state of a session, for GET /v1/sessions/{id} and before a payment on site.
-- KEYS: 1 open  2 held  3 record (pk:{L}:s:<seq>)   ARGV: 1 seq
-- Returns {'open', record, held or ''} | {'closed', flat list of the record's fields} | {'unknown'}
local rec = open_get(lot_prefix(KEYS[1]), ARGV[1])
if rec then
  return {'open', rec, redis.call('HGET', KEYS[2], ARGV[1]) or ''}
end
local closed = redis.call('HGETALL', KEYS[3])
if #closed > 0 then
  return {'closed', closed}
end
return {'unknown'}
