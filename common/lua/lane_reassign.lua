-- Correction of a misread (docs/api.md): an exit that closed session X belongs to open session Y.
-- X opens again (its car is still inside), Y closes with X's exit and a fee recomputed by the
-- gateway with the tariff engine; X's bill, if any, is void (status reassigned) and Y's is billed,
-- each bill's history saying why; the lot-day of the exit, the arrears index and the audit log
-- follow in the same step.
-- KEYS: 1 open  2 fold  3 held  4 tariffs  5 bills stream  6 record X  7 history X  8 record Y
--       9 history Y  10 due  11 the exit's lot-day (pk:{L}:day:<date>)  12 pk:{L}:arrears
--       13 pk:{L}:arrears:info  14 pk:{L}:audit
-- read:   ARGV: 1 'read'  2 seq X  3 seq Y
--         Returns {'read', flat record X, open record Y or '', held Y or '', Y's tariff or ''}
-- commit: ARGV: 1 'commit'  2 seq X  3 seq Y  4 X's status as read  5 Y's open record as read
--         6 now  7 reason  8 who (role US scope US name)  9 lot  10 X's open record again ('':
--         X was made from an exit without entry, and is not opened again)  11 X's fold key  12 Y's fold key  13 bill stream fields (US-joined pairs) or ''
--         14 record ttl for a closed record without a bill  15.. Y's record fields and values
--         Returns {'ok', audit id, X's driver, X's bill} | {'retry'}
--               | {'day', the bill's day}: nothing changed; ask again with its key
local mode, sx, sy = ARGV[1], ARGV[2], ARGV[3]
local rec_x, rec_y = KEYS[6], KEYS[8]
local P = lot_prefix(KEYS[1])
if mode == 'read' then
  local y = open_get(P, sy) or ''
  local tariff = ''
  if y ~= '' then
    tariff = redis.call('HGET', KEYS[4], parse_session(y).tver) or ''
  end
  return {'read', redis.call('HGETALL', rec_x), y, redis.call('HGET', KEYS[3], sy) or '', tariff}
end

local now, reason, lot = tonumber(ARGV[6]), ARGV[7], ARGV[9]
local x = redis.call('HMGET', rec_x, 'status', 'bill', 'driver', 'amount', 'refunded_amount', 'id')
if x[1] ~= ARGV[4] or open_get(P, sy) ~= ARGV[5] or
   open_get(P, sx) then
  return {'retry'}
end
local money = money_day(rec_x, KEYS[11])
if money ~= 'ok' and money ~= 'none' then
  return {'day', money}
end
local sid_x, sid_y = lot .. '~' .. sx, lot .. '~' .. sy

-- X: its exit was not its car's; the session is open again, its bill void.
local bills_delta = 0
if money == 'ok' then
  -- Its money leaves the lot-day (billed and its bucket); the void bill is in no bucket.
  money_adjust(KEYS[11], rec_x, -(tonumber(x[4] or '0') - tonumber(x[5] or '0')))
  redis.call('HDEL', rec_x, 'mb')
end
if x[2] then
  bills_delta = -1
  arrears_move(rec_x, sx, 'settled', false, now)
end
if ARGV[10] ~= '' then
  open_put(P, sx, ARGV[10])
  fold_add(P, ARGV[11], sx)
end
redis.call('HSET', rec_x, 'status', 'reassigned', 'reassigned_to', sid_y, 'reassigned_at',
           ARGV[6], 'reassign_reason', reason)
redis.call('HDEL', rec_x, 'charge_requested', 'next_at')
redis.call('ZREM', KEYS[10], sx)
redis.call('RPUSH', KEYS[7], cjson.encode({at = now, from = x[1], to = 'reassigned',
                                           cause = 'exit reassigned to ' .. sid_y .. ': ' ..
                                                   reason}))

-- Y: closed at X's exit, with the fee recomputed.
local y = parse_session(ARGV[5])
open_del(P, sy)
redis.call('HDEL', KEYS[3], sy)
fold_remove(P, ARGV[12], sy)
local args = {'HSET', rec_y}
local status_y, amount_y = '', 0
for i = 15, #ARGV - 1, 2 do
  args[#args + 1] = ARGV[i]
  args[#args + 1] = ARGV[i + 1]
  if ARGV[i] == 'status' then
    status_y = ARGV[i + 1]
  elseif ARGV[i] == 'amount' then
    amount_y = tonumber(ARGV[i + 1]) or 0
  end
end
redis.call(unpack(args))
if status_y == 'pending' then
  money_new(KEYS[11], rec_y, 'outstanding', amount_y, true)
  bills_delta = bills_delta + 1
  local s = {'XADD', KEYS[5], '*'}
  for _, v in ipairs(split(ARGV[13])) do
    s[#s + 1] = v
  end
  redis.call(unpack(s))
elseif status_y == 'closed' then
  redis.call('EXPIRE', rec_y, tonumber(ARGV[14]))
end
redis.call('RPUSH', KEYS[9], cjson.encode({at = now, to = status_y,
                                           cause = 'exit reassigned from ' .. sid_x .. ': ' ..
                                                   reason}))
count(KEYS[11], 'reassigned=1,bills=' .. bills_delta)
local id = audit(ARGV[8], now, 'reassign', sid_x, lot, reason,
                 {'to_session', sid_y, 'plate', y.plate, 'amount', tostring(amount_y),
                  'void_bill', x[2] or ''})
return {'ok', id, x[3] or '', x[2] or ''}
