-- Sets (or, with an empty snapshot, removes) a plate's copy of its driver's record, keeping the
-- newest version.  KEYS: 1 pk:plate:{F}   ARGV: 1 plate  2 driver id  3 version  4 snapshot or ''
-- Returns {'ok'} | {'stale'} | {'taken', other driver}
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur then
  local f = split(cur)
  if f[1] ~= ARGV[2] then
    return {'taken', f[1]}
  end
  if ARGV[4] ~= '' and tonumber(f[2]) >= tonumber(ARGV[3]) then
    return {'stale'}
  end
end
if ARGV[4] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[4])
end
return {'ok'}
