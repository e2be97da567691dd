-- Claims a plate for a driver before the driver's record names it, so two drivers can never hold
-- the same plate.  KEYS: 1 pk:plate:{F}   ARGV: 1 plate  2 driver id
-- Returns {'ok'} | {'taken', other driver}
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur then
  local owner = split(cur)[1]
  if owner ~= ARGV[2] then
    return {'taken', owner}
  end
  return {'ok'}
end
redis.call('HSET', KEYS[1], ARGV[1], table.concat({ARGV[2], '0', '', '', '', '', '', ''}, US))
return {'ok'}
